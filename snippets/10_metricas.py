"""Capítulo 10: as métricas do farense_guide.metrics calculadas à mão em respostas de exemplo."""

# --8<-- [start:geradoras]
from farense_guide import metrics

referencia = "O Sporting Clube Farense foi fundado oficialmente a 1 de abril de 1910."
respostas = [
    "O Sporting Clube Farense foi fundado oficialmente a 1 de abril de 1910",
    "Foi fundado a 1 de abril de 1910.",
    "O Farense foi fundado em 1910, no dia 1 de abril.",
    "Não sei.",
]
print("referência normalizada:", metrics.normalise_answer(referencia))
for resposta in respostas:
    tokens = metrics.token_scores(resposta, referencia)
    print(f"\n{resposta}\n  normalizada: {metrics.normalise_answer(resposta)}")
    print(f"  exact match {metrics.exact_match(resposta, referencia):.0f} · precisão {tokens.precision:.3f} · "
          f"recall {tokens.recall:.3f} · F1 {tokens.f1:.3f} · ROUGE-L {metrics.rouge_l(resposta, referencia):.3f} · "
          f"recusa {metrics.is_refusal(resposta)}")
# --8<-- [end:geradoras]

# --8<-- [start:verosimilhanca]
# Duas perguntas; para cada uma, a resposta certa (rótulo 1) e duas de outras perguntas (rótulo 0).
# As pontuações são log-probabilidades médias por token, inventadas para o exemplo.
pontuacoes = [-0.4, -1.9, -2.3,   -1.2, -0.9, -2.8]
rotulos    = [1,    0,    0,      1,    0,    0]

fpr, tpr, limiares = metrics.roc_curve(pontuacoes, rotulos)
print("\nAUC:", metrics.auc(fpr, tpr))
limiar = metrics.best_threshold(pontuacoes, rotulos)  # na avaliação real: escolhido na validação
matriz = metrics.confusion(pontuacoes, rotulos, limiar)
print("limiar:", limiar, "·", matriz.as_dict())

aceitar_tudo = metrics.confusion(pontuacoes, rotulos, min(pontuacoes))
print("F1 de aceitar todas as respostas:", aceitar_tudo.f1)

grupos = [pontuacoes[i:i + 3] for i in range(0, len(pontuacoes), 3)]  # uma pergunta: a certa primeiro
top1 = [float(max(grupo) == grupo[0]) for grupo in grupos]
print("top-1:", sum(top1) / len(top1))
# --8<-- [end:verosimilhanca]

# --8<-- [start:bootstrap]
f1_por_pergunta = [metrics.token_scores(r, referencia).f1 for r in respostas]
intervalo = metrics.bootstrap_interval(f1_por_pergunta)
print(f"\nF1 médio {intervalo.mean:.3f}, IC 95% [{intervalo.low:.3f}, {intervalo.high:.3f}]")
# --8<-- [end:bootstrap]
