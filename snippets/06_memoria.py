"""Capítulo 6: a estimativa de memória de um perfil, antes de carregar ou descarregar o modelo."""

# --8<-- [start:memoria]
from farense_guide.book.fragments import M1_16GB_WORKING_SET
from farense_guide.memory import GB, Fit, estimate_for, judge_fit, model_shape
from farense_guide.config import apply_overrides, load_profile

perfil = load_profile("m1-16gb")  # Mistral-7B a 4 bits; model_shape no YAML chega para a estimativa
forma = model_shape(perfil)
print(f"{forma.parameter_count() / 1e9:.2f} mil milhões de parâmetros nas camadas lineares e embeddings")

variantes = {
    "perfil m1-16gb": perfil,
    "sem gradient checkpointing": apply_overrides(perfil, ["grad_checkpoint=false"]),
    "LoRA rank 16": apply_overrides(perfil, ["lora.rank=16"]),
    "max_seq_length 1024": apply_overrides(perfil, ["max_seq_length=1024"]),
}
for nome, variante in variantes.items():
    estimativa, precisao = estimate_for(variante, forma, quantized=True)
    print(f"\n{nome} ({precisao}, batch {variante.batch_size} x {variante.max_seq_length}):")
    for parcela in estimativa.rows():
        print(f"  {parcela.label:<38} {parcela.size / GB:6.2f} GB")
    print(f"  num M1 de 16 GB ({M1_16GB_WORKING_SET / GB:.1f} GB para a GPU): {judge_fit(estimativa.total, M1_16GB_WORKING_SET).label}")
# --8<-- [end:memoria]

perfil_estimado, _ = estimate_for(perfil, forma, quantized=True)
assert judge_fit(perfil_estimado.total, M1_16GB_WORKING_SET) is Fit.FITS
