"""Capítulo 9: ler metrics.jsonl com pandas."""

# --8<-- [start:metricas]
import pandas as pd

metricas = pd.read_json("runs/farense/metrics.jsonl", lines=True)
treino = metricas[metricas["type"] == "train"].set_index("step")
validacao = metricas[metricas["type"] == "valid"].set_index("step")

print(treino[["epoch", "train_loss", "learning_rate", "tokens_per_second", "peak_memory_gb"]].tail())
print(validacao[["epoch", "val_loss"]])
melhor = validacao["val_loss"].idxmin()
print(f"melhor perda de validação: {validacao.loc[melhor, 'val_loss']:.4f} no passo {melhor}")
print(f"tokens/s: mediana {treino['tokens_per_second'].median():.0f}; memória de pico: {treino['peak_memory_gb'].max():.2f} GB")
# --8<-- [end:metricas]

assert not treino.empty and not validacao.empty
assert treino.index.is_monotonic_increasing
