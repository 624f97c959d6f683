"""Numbers, dates and durations as pt-PT writes them: «1 234,5», «25 de novembro de 2026», «1 h 05 min»."""

from __future__ import annotations

from datetime import datetime

MONTHS = ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro")
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def pt(value: float | None, digits: int = 2) -> str:
    """Decimal comma, a space between thousands; '—' for a missing value."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")


def pt_learning_rate(value: float) -> str:
    """5e-4 as people write it in a profile: «5e-4», not «5e-04»."""
    return f"{value:.0e}".replace("e-0", "e-")


def pt_scientific(value: float, digits: int = 1) -> str:
    """2.8e10 -> «2,8 × 10¹⁰»."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa.replace('.', ',')} × 10{str(int(exponent)).translate(SUPERSCRIPT)}"


def parse_stamp(stamp: str) -> datetime:
    """A run.json time ("2026-11-25T15:46:24+0000")."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")


def pt_date(stamp: str) -> str:
    when = parse_stamp(stamp)
    return f"{when.day} de {MONTHS[when.month - 1]} de {when.year}"


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def pt_interval(interval: dict, digits: int = 3) -> str:
    """A confidence interval ({"ci_low", "ci_high"}) as «[0,512; 0,634]»."""
    return f"[{pt(interval['ci_low'], digits)}; {pt(interval['ci_high'], digits)}]"


def pt_mean_interval(interval: dict, digits: int = 3) -> str:
    """A mean and its interval ({"mean", "ci_low", "ci_high"}) as «0,573 [0,512; 0,634]»."""
    return f"{pt(interval['mean'], digits)} {pt_interval(interval, digits)}"


def pt_signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign: «+0,123», «−0,045» (a true minus sign), «0,000»."""
    if value is None:
        return "—"
    text = pt(abs(value), digits)
    return text if set(text) <= set("0, ") else ("+" if value > 0 else "−") + text


def pt_signed_interval(interval: dict, digits: int = 3) -> str:
    """The interval of a difference ({"ci_low", "ci_high"}) as «[+0,050; +0,190]»."""
    return f"[{pt_signed(interval['ci_low'], digits)}; {pt_signed(interval['ci_high'], digits)}]"


def pt_difference(difference: dict, digits: int = 3) -> str:
    """A paired difference ({"difference", "ci_low", "ci_high"}) as «+0,123 [+0,050; +0,190]»."""
    return f"{pt_signed(difference['difference'], digits)} {pt_signed_interval(difference, digits)}"


def pt_p_value(p_value: float) -> str:
    """«p < 0,001» below a thousandth, else «p = 0,042»."""
    return "p < 0,001" if p_value < 0.001 else f"p = {pt(p_value, 3)}"
