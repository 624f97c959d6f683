"""Chapter 6's table of base models: generated from the memory estimator, one row and one estimate per model."""

from farense_guide.book.sections import base_models
from farense_guide.config import load_profile
from farense_guide.memory import GB, ModelShape, estimate_for
from farense_guide.pt_format import pt


def test_the_fragment_has_a_row_with_an_estimate_for_every_model(tmp_path):
    files, values = base_models.fragment(tmp_path)  # any run: the table does not read it
    table = files["base_models.md"]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| modelo", "| ---"))]
    assert len(rows) == len(base_models.MODELS) == int(values["base_models.count"])
    for model in base_models.MODELS:
        row = next(r for r in rows if r.startswith(f"| {model.name} "))
        for name in ("qlora_gb", "float16_gb", "qlora_verdict", "float16_verdict", "parameters_b"):
            value = values[f"base_models.{model.key}.{name}"]
            assert value not in ("", "—") and f" {value} |" in row
        assert float(values[f"base_models.{model.key}.qlora_gb"].replace(",", ".")) > 0
    assert all(name.startswith("base_models.") for name in values)
    assert "Nenhuma linha é um run" in table


def test_the_mistral_row_is_the_m1_profile_estimate_and_rows_grow_with_the_model(tmp_path):
    _, values = base_models.fragment(tmp_path)
    profile = load_profile("m1-16gb")
    estimate, _ = estimate_for(profile, ModelShape.from_config(profile.model_shape), quantized=True)
    assert values["base_models.mistral7b_v03.qlora_gb"] == pt(estimate.total / GB, 2)
    totals = {m.key: float(values[f"base_models.{m.key}.qlora_gb"].replace(",", ".")) for m in base_models.MODELS}
    assert totals["smollm2_135m"] < totals["llama32_1b"] < totals["llama32_3b"] < totals["qwen25_7b"]
    # a 16-bit base always costs more than the same base at 4 bits
    assert all(float(values[f"base_models.{k}.float16_gb"].replace(",", ".")) > v for k, v in totals.items())


def test_the_module_is_one_of_the_guide_sections():
    import pkgutil

    from farense_guide.book import sections

    assert "base_models" in [info.name for info in pkgutil.iter_modules(sections.__path__)]  # found by fragments.generate


def test_what_chapter_6_says_of_the_table_holds(tmp_path):
    """The prose of «Escolher o modelo base» reads these comparisons off the table: they must stay true."""
    _, values = base_models.fragment(tmp_path)

    def number(key, name):
        return float(values[f"base_models.{key}.{name}"].replace(",", "."))

    assert values["base_models.fits_qlora"] == f"todos os {len(base_models.MODELS)}"  # «a memória não decide a escolha»
    assert values["base_models.qwen25_7b.float16_verdict"] == values["base_models.mistral7b_v03.float16_verdict"] == "não cabe"
    gemma = number("gemma2_2b", "qlora_gb")
    for bigger in ("llama32_3b", "phi35_mini"):  # more parameters, smaller vocabulary, less memory
        assert number(bigger, "parameters_b") > number("gemma2_2b", "parameters_b") and number(bigger, "qlora_gb") < gemma
    assert number("smollm2_1_7b", "parameters_b") > number("llama32_1b", "parameters_b")
    assert number("smollm2_1_7b", "qlora_gb") < number("llama32_1b", "qlora_gb")


def test_names_are_listed_the_portuguese_way():
    assert base_models.pt_list([]) == "nenhum"
    assert base_models.pt_list(["a"]) == "a"
    assert base_models.pt_list(["a", "b", "c"]) == "a, b e c"
