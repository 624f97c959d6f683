"""Capítulo 11: o estimador de memória para o perfil m1-16gb, com e sem gradient checkpointing."""

# --8<-- [start:memoria]
from dataclasses import replace

from farense_guide.memory import GB, ModelShape
from farense_guide.preflight import estimate_for
from farense_guide.profiles import load_profile

perfil = load_profile("m1-16gb")
forma = ModelShape.from_config(perfil.model_shape)
for nome, variante in [("perfil m1-16gb", perfil), ("sem checkpointing", replace(perfil, grad_checkpoint=False))]:
    estimativa, precisao = estimate_for(variante, forma, quantized=True)
    print(f"{nome} ({precisao}):")
    for rotulo, valor in estimativa.rows():
        print(f"  {rotulo:40} {valor / GB:6.2f} GB")
# --8<-- [end:memoria]
