"""Capítulo 5: um exemplo do conjunto de treino, e o texto que o modelo vê depois do molde de chat."""

# --8<-- [start:registo]
import json

from farense_guide.models import load_tokenizer

with open("data/train.jsonl", encoding="utf-8") as ficheiro:
    registos = [json.loads(linha) for linha in ficheiro]

registo = next(r for r in registos if len(r["messages"]) == 3)  # o primeiro de uma só pergunta
for mensagem in registo["messages"]:
    print(f"{mensagem['role']:>9}: {mensagem['content']}")
print("     meta:", registo["meta"])

# O mesmo exemplo como o treino o vê: o molde de chat do tokenizador junta as mensagens num texto.
tokenizador = load_tokenizer("smollm2")
texto = tokenizador.apply_chat_template(registo["messages"], tokenize=False)
print(texto)
print(len(tokenizador.encode(texto, add_special_tokens=False)), "tokens")
# --8<-- [end:registo]

assert [m["role"] for m in registo["messages"]] == ["system", "user", "assistant"]
assert registo["messages"][-1]["content"] in texto
