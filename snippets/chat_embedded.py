"""Uma pergunta ao SmolLM2-135M-Instruct embutido, convertido para MLX na primeira utilização."""

# --8<-- [start:chat]
from mlx_lm import generate, load

from farense_guide.models import resolve_model

model, tokenizer = load(str(resolve_model("smollm2")))
messages = [{"role": "user", "content": "What is the capital of France?"}]
prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
print(generate(model, tokenizer, prompt=prompt, max_tokens=40))
# --8<-- [end:chat]
