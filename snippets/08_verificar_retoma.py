"""Capítulo 8: o run interrompido e retomado (runs/retoma) dá o adaptador do run sem interrupções (runs/farense, capítulo 7)."""

import sys
from pathlib import Path

if not Path("runs/retoma/run.json").exists():  # snippets/08_retomar.sh não correu nesta pasta
    sys.exit(0)

# --8<-- [start:comparar]
import json

import mlx.core as mx


def perfil(run):
    with open(f"runs/{run}/run.json", encoding="utf-8") as ficheiro:
        return json.load(ficheiro)["profile"]


if perfil("retoma") != perfil("farense"):
    print("runs/retoma e runs/farense foram treinados com perfis diferentes: não há nada a comparar")
else:
    retomado = mx.load("runs/retoma/adapters/last/adapters.safetensors")
    inteiro = mx.load("runs/farense/adapters/last/adapters.safetensors")
    diferenca = max(mx.abs(retomado[nome] - inteiro[nome]).max().item() for nome in inteiro)
    print(f"{len(inteiro)} matrizes LoRA; maior diferença entre os dois adaptadores: {diferenca}")
# --8<-- [end:comparar]
    assert retomado.keys() == inteiro.keys() and diferenca <= 1e-6, diferenca
