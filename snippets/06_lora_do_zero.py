"""Capítulo 6: uma camada LoRA escrita de raiz em MLX, conferida com a LoRALinear do mlx-lm, em float e a 4 bits."""

# --8<-- [start:camada]
import math

import mlx.core as mx
import mlx.nn as nn


class CamadaLoRA(nn.Module):
    """saída = base(x) + scale · (x·A)·B: a camada base fica congelada, só A e B se treinam."""

    def __init__(self, base: nn.Module, rank: int = 8, scale: float = 20.0):
        super().__init__()
        saidas, entradas = base.weight.shape
        if isinstance(base, nn.QuantizedLinear):  # a 4 bits, cada elemento uint32 guarda 8 pesos
            entradas = entradas * 32 // base.bits
        self.base = base
        self.base.freeze()  # os pesos do modelo base não recebem gradientes
        limite = 1 / math.sqrt(entradas)
        self.lora_a = mx.random.uniform(low=-limite, high=limite, shape=(entradas, rank))  # A: pequena e aleatória
        self.lora_b = mx.zeros((rank, saidas))  # B: a zeros, para a camada começar igual à base
        self.scale = scale

    def __call__(self, x):
        ajuste = (x @ self.lora_a) @ self.lora_b  # nunca se forma a matriz B·A do tamanho de W
        return self.base(x) + (self.scale * ajuste).astype(x.dtype)
# --8<-- [end:camada]


# --8<-- [start:conferir]
from mlx.utils import tree_flatten
from mlx_lm.tuner.lora import LoRALinear

mx.random.seed(0)
base = nn.Linear(128, 64, bias=False)  # uma camada linear «do modelo base», pesos aleatórios
nossa = CamadaLoRA(base, rank=4)
x = mx.random.normal((2, 5, 128))  # um batch de 2 sequências de 5 tokens

# 1. Com B a zeros, a camada adaptada dá exatamente a saída da base.
print("B a zeros, diferença para a base:      ", mx.abs(nossa(x) - base(x)).max().item())

# 2. Só A e B são treináveis; e, no primeiro passo, só B recebe gradiente (o de A passa por B = 0).
def perda(modelo, x):
    return (modelo(x) ** 2).mean()  # uma perda qualquer, só para ver os gradientes

_, gradientes = nn.value_and_grad(nossa, perda)(nossa, x)
for nome, g in tree_flatten(gradientes):
    print(f"gradiente de {nome}: máximo {mx.abs(g).max().item():.2e}")

# 3. Com os mesmos A, B e scale, a saída é a da LoRALinear do mlx-lm.
nossa.lora_b = 0.01 * mx.random.normal(nossa.lora_b.shape)  # como depois de alguns passos de treino
deles = LoRALinear.from_base(base, r=4, scale=20.0)
deles.lora_a, deles.lora_b = nossa.lora_a, nossa.lora_b
print("diferença para a LoRALinear do mlx-lm: ", mx.abs(nossa(x) - deles(x)).max().item())
# --8<-- [end:conferir]


# --8<-- [start:qlora]
base4 = nn.QuantizedLinear.from_linear(base, group_size=64, bits=4)  # a mesma camada, a 4 bits
print("pesos a 4 bits:", base4.weight.dtype, base4.weight.shape, "+ escalas e desvios por grupo:", base4.scales.shape)
bytes4 = base4.weight.nbytes + base4.scales.nbytes + base4.biases.nbytes
print(f"bytes da base: {base.weight.nbytes} em float32, {bytes4} a 4 bits")

# Na multiplicação, o MLX reconstrói os pesos de cada grupo a partir dos 4 bits; é o mesmo que desquantizar antes.
w = mx.dequantize(base4.weight, base4.scales, base4.biases, group_size=64, bits=4)
print("base4(x) contra x·Wᵀ desquantizado:    ", mx.abs(base4(x) - x @ w.T).max().item())
print("erro da quantização, base4 contra base:", mx.abs(base4(x) - base(x)).max().item())

# A camada LoRA é a mesma: A e B continuam em float32, só a base mudou.
nossa4 = CamadaLoRA(base4, rank=4)
nossa4.lora_a, nossa4.lora_b = nossa.lora_a, nossa.lora_b
deles4 = LoRALinear.from_base(base4, r=4, scale=20.0)
deles4.lora_a, deles4.lora_b = nossa.lora_a, nossa.lora_b
print("QLoRA, diferença para a LoRALinear:    ", mx.abs(nossa4(x) - deles4(x)).max().item())
print("A e B em", nossa4.lora_a.dtype, "| treináveis:", [nome for nome, _ in tree_flatten(nossa4.trainable_parameters())])
# --8<-- [end:qlora]

# O que o texto do capítulo afirma, verificado a cada execução (os testes voltam a verificá-lo).
nova = CamadaLoRA(base, rank=4)
assert mx.array_equal(nova(x), base(x))
assert [nome for nome, _ in tree_flatten(nova.trainable_parameters())] == ["lora_a", "lora_b"]
assert mx.abs(gradientes["lora_a"]).max().item() == 0 and mx.abs(gradientes["lora_b"]).max().item() > 0
assert mx.allclose(nossa(x), deles(x), atol=1e-5)
assert mx.allclose(base4(x), x @ w.T, atol=1e-4)
assert mx.allclose(nossa4(x), deles4(x), atol=1e-5)
assert nossa4.lora_a.dtype == mx.float32 and base4.bits == 4 and bytes4 < base.weight.nbytes / 4
