"""Capítulo 5: dados seus, de uma folha de cálculo a JSONL.

    python snippets/05_dados_proprios.py [CSV] [--output PASTA] [--seed N]

Lê um CSV de perguntas e respostas (colunas item, tipo, pergunta, resposta), verifica-o, faz de cada linha uma
conversa no formato de chat e divide as conversas item a item em train.jsonl, valid.jsonl e test.jsonl.
Sem argumentos, lê snippets/dados/perguntas.csv (a Biblioteca do Farol, inventada) e escreve em runs/dados-biblioteca.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd

from farense_guide.metrics import REFUSAL  # a expressão com que a avaliação reconhece uma recusa

CSV = Path("snippets/dados/perguntas.csv")
PASTA = Path("runs/dados-biblioteca")
SEMENTE = 0

# --8<-- [start:converter]
SISTEMA = ("És o assistente da Biblioteca do Farol, uma biblioteca fictícia. Respondes em português de Portugal, "
           "com frases completas e apenas com o que sabes; quando não sabes, dizes que não tens essa informação.")


def ler_tabela(caminho: Path) -> pd.DataFrame:
    """O CSV, recusado se não tiver o que a divisão e a avaliação esperam."""
    tabela = pd.read_csv(caminho, dtype=str, keep_default_na=False).apply(lambda coluna: coluna.str.strip())
    recusa = tabela["resposta"].map(lambda resposta: REFUSAL.search(resposta) is not None)
    fora = tabela["tipo"] == "out_of_scope"
    por_item = tabela.groupby("item").size()
    problemas = [f"tipo desconhecido (use fact ou out_of_scope): {tipo}" for tipo in set(tabela["tipo"]) - {"fact", "out_of_scope"}]
    problemas += [f"fora do âmbito, mas a resposta não é uma recusa: {p}" for p in tabela["pergunta"][fora & ~recusa]]
    problemas += [f"um facto cuja resposta conta como recusa: {p}" for p in tabela["pergunta"][~fora & recusa]]
    problemas += [f"o item {item} tem {n} pergunta(s): são precisas pelo menos 3" for item, n in por_item[por_item < 3].items()]
    if problemas:
        raise SystemExit("\n".join(problemas))
    return tabela


def conversa(linha) -> dict:
    """Uma linha do CSV como exemplo de chat; meta diz à avaliação de que item vem e se é para recusar."""
    mensagens = [{"role": "system", "content": SISTEMA},
                 {"role": "user", "content": linha.pergunta},
                 {"role": "assistant", "content": linha.resposta}]
    return {"messages": mensagens, "meta": {"id": linha.item, "kind": linha.tipo}}


def dividir(tabela: pd.DataFrame, semente: int) -> dict[str, list[dict]]:
    """Item a item: uma formulação para o teste, outra para a validação, as restantes para o treino."""
    aleatorio = random.Random(semente)
    conjuntos = {"train": [], "valid": [], "test": []}
    for _, linhas in tabela.groupby("item", sort=True):
        exemplos = [conversa(linha) for linha in linhas.itertuples(index=False)]
        aleatorio.shuffle(exemplos)
        conjuntos["test"].append(exemplos[0])
        conjuntos["valid"].append(exemplos[1])
        conjuntos["train"] += exemplos[2:]
    aleatorio.shuffle(conjuntos["train"])  # sem isto, as perguntas de um item cairiam no mesmo batch
    return conjuntos


def escrever(conjuntos: dict[str, list[dict]], pasta: Path) -> None:
    pasta.mkdir(parents=True, exist_ok=True)
    for nome, exemplos in conjuntos.items():
        with open(pasta / f"{nome}.jsonl", "w", encoding="utf-8") as ficheiro:
            ficheiro.writelines(json.dumps(exemplo, ensure_ascii=False) + "\n" for exemplo in exemplos)
# --8<-- [end:converter]


def main() -> None:
    parser = argparse.ArgumentParser(description="Do CSV de perguntas e respostas a train/valid/test.jsonl, item a item.")
    parser.add_argument("csv", nargs="?", type=Path, default=CSV, help=f"o CSV (por omissão: {CSV})")
    parser.add_argument("--output", type=Path, default=PASTA, help=f"pasta de saída (por omissão: {PASTA})")
    parser.add_argument("--seed", type=int, default=SEMENTE, help=f"semente da divisão (por omissão: {SEMENTE})")
    args = parser.parse_args()
    conjuntos = dividir(ler_tabela(args.csv), args.seed)
    escrever(conjuntos, args.output)
    print(", ".join(f"{nome}.jsonl: {len(exemplos)}" for nome, exemplos in conjuntos.items()), "em", args.output)


if __name__ == "__main__":
    main()
