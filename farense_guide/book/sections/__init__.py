"""The fragments of the guide's teaching sections, one module each, found by `fragments.section_modules`.

Each module here defines

    def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]
        # (generated Markdown files by name, written to guide/_generated/<name>; values for [[name]] placeholders)
    def sources(run_path: Path) -> list[Path]
        # the files it reads, for the fragments' stamp

and may define FIGURES, a list of (source path, name) pairs copied to guide/_generated/figures/<name>.
Value names start with the module's own prefix, so that two modules never write the same name.
"""
