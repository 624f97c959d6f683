"""Capítulo 11: o teto de débito de um modelo 7B na GPU de um M1, a partir da forma do modelo no perfil m1-16gb."""

# --8<-- [start:limite]
import json
from pathlib import Path

from farense_guide.book.fragments import FLOPS_PER_PARAMETER_TOKEN, M1_GPU_FLOPS, STORY_CLAIMED_TOKENS_PER_SECOND
from farense_guide.memory import ModelShape
from farense_guide.config import load_profile

perfil = load_profile("m1-16gb")
forma = ModelShape.from_config(perfil.model_shape)
parametros = forma.parameter_count()  # camadas lineares e embeddings (sem as normalizações, que são pouco)
flops_por_token = FLOPS_PER_PARAMETER_TOKEN * parametros  # 2 no forward + ~1 no backward (só as camadas adaptadas, metade) + ~1 do checkpointing
teto = M1_GPU_FLOPS / flops_por_token  # tokens/s com a GPU a 100%, o que nunca acontece

tokens_treino = json.loads(Path("data/stats/stats.json").read_text())["splits"]["train"]["tokens_total"]
print(f"parâmetros: {parametros / 1e9:.2f} mil milhões")
print(f"FLOPs por token treinado: {flops_por_token:.2e}")
print(f"teto num M1 com GPU de 8 núcleos ({M1_GPU_FLOPS / 1e12:.1f} TFLOP/s): {teto:.0f} tokens/s")
print(f"uma época ({tokens_treino} tokens): pelo menos {tokens_treino / teto / 60:.0f} min; "
      f"{perfil.epochs} épocas: pelo menos {perfil.epochs * tokens_treino / teto / 60:.0f} min")
for anunciado in STORY_CLAIMED_TOKENS_PER_SECOND:  # o que a história anunciava
    print(f"{anunciado} tokens/s seriam {anunciado / teto:.1f} vezes o teto")
# --8<-- [end:limite]
