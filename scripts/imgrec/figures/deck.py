"""The deck: which figures, tables and demos the talk shows, in its order, and
``index.html``, one page that opens in a browser without a server.

Kept free of matplotlib and JAX: the Snakemake rules import the names from here.

CLI::

    python scripts/make_figures.py index --dir results/figures --out results/figures/index.html
    python scripts/make_figures.py collect --src results/figures --dest figures FILE ...
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

FIGURE_FORMATS = ("png", "pdf", "svg", "txt")

# name -> title, for the figures rendered by scripts/make_figures.py
FIGURES = {
    "compute_eras": "Two distinct eras of compute usage in training AI systems",
    "precision": "Lower precision: fp32 against bf16",
    "training_curves": "Training curves",
    "scaling": "Scaling curves",
    "recap_table": "Recap: our numbers and the published ones",
    "rulegraph": "The pipeline itself",
}
# name -> title, for the demo notebooks in workflow/notebooks/
NOTEBOOKS = {
    "jax_hello_world": "Demo: JAX hello world (jit, grad, vmap, pmap)",
    "custom_gradients": "Demo: custom gradients (SiLU with custom_jvp / custom_vjp)",
    "mnist_demo": "Demo: the MNIST CNN (fp32)",
    "cifar_demo": "Demo: the CIFAR CNN (bf16)",
}
# The talk's order: why (compute), what JAX is (demos), the models (demos), what
# precision and scale buy, the numbers, and how every number is made.
ORDER = [("figure", "compute_eras"), ("notebook", "jax_hello_world"), ("notebook", "custom_gradients"),
         ("notebook", "mnist_demo"), ("notebook", "cifar_demo"), ("figure", "precision"),
         ("figure", "training_curves"), ("figure", "scaling"), ("figure", "recap_table"),
         ("figure", "rulegraph")]
EXTRA_FILES = {"recap_table": ["md"], "rulegraph": ["dot"]}


def figure_files(name: str) -> list[str]:
    """Files of one figure, relative to the figures directory."""
    return [f"{name}.{ext}" for ext in FIGURE_FORMATS + tuple(EXTRA_FILES.get(name, []))]


def notebook_files(name: str) -> list[str]:
    return [f"notebooks/{name}.ipynb", f"notebooks/{name}.html"]


def all_files() -> list[str]:
    """Every file of the deck except index.html, relative to the figures directory."""
    files = [f for kind, name in ORDER for f in (figure_files(name) if kind == "figure" else notebook_files(name))]
    return files


def referenced_files(index_html: str) -> list[str]:
    """The relative files an index page links to or shows (for checks)."""
    import re

    return sorted(set(re.findall(r'(?:src|href)="(?!https?:|#|data:)([^"]+)"', index_html)))


# ---------------------------------------------------------------- index.html
CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1200px;margin:0 auto;padding:1.5em;color:#222}
h1{font-size:1.8em;margin-bottom:.2em} nav ol{columns:2;font-size:.95em}
section{border-top:1px solid #ddd;padding:1.2em 0 1.6em;page-break-inside:avoid}
section h2{font-size:1.35em;margin:.2em 0 .6em} .n{color:#888;font-weight:normal;margin-right:.4em}
img{max-width:100%;height:auto;border:1px solid #eee} p.caption{font-size:.95em;line-height:1.45;color:#333}
p.links a{margin-right:1em;font-size:.9em} iframe{width:100%;height:640px;border:1px solid #ddd}
table.recap{border-collapse:collapse;font-size:.85em;margin:.8em 0} table.recap th,table.recap td{border:1px solid #ccc;padding:.25em .5em}
table.recap th{background:#2b3f5c;color:#fff}
"""


def markdown_table_to_html(md: str) -> str:
    """The pipe tables (and plain paragraphs) of a recap Markdown file as HTML."""
    out, rows = [], []

    def flush():
        if rows:
            head, body = rows[0], [r for r in rows[2:]]
            out.append('<table class="recap"><thead><tr>' + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                       + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            rows.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        else:
            flush()
            if line.strip() and not line.startswith("#"):
                out.append(f"<p class=\"caption\">{html.escape(line.strip())}</p>")
    flush()
    return "\n".join(out)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


def build_index(fig_dir, title: str = "Image recognition with JAX: figures, tables and demos") -> str:
    """index.html for the deck in ``fig_dir`` (paths in it are relative to that directory)."""
    fig_dir = Path(fig_dir)
    toc, sections = [], []
    for i, (kind, name) in enumerate(ORDER, 1):
        heading = FIGURES[name] if kind == "figure" else NOTEBOOKS[name]
        toc.append(f'<li><a href="#{name}">{html.escape(heading)}</a></li>')
        body = [f'<section id="{name}"><h2><span class="n">{i}.</span>{html.escape(heading)}</h2>']
        if kind == "figure":
            body.append(f'<img src="{name}.png" alt="{html.escape(heading)}" loading="lazy">')
            body.append(f'<p class="caption">{html.escape(_read(fig_dir / f"{name}.txt"))}</p>')
            if name == "recap_table":
                body.append(markdown_table_to_html(_read(fig_dir / f"{name}.md")))
            links = [f'<a href="{name}.{ext}">{ext.upper()}</a>' for ext in ("png", "pdf", "svg")]
            links += [f'<a href="{name}.{ext}">{"Markdown" if ext == "md" else "DOT"}</a>'
                      for ext in EXTRA_FILES.get(name, [])]
            links.append(f'<a href="{name}.txt">caption</a>')
            body.append('<p class="links">' + " ".join(links) + "</p>")
        else:
            body.append(f'<p class="links"><a href="notebooks/{name}.html">executed notebook (HTML)</a> '
                        f'<a href="notebooks/{name}.ipynb">executed notebook (.ipynb)</a></p>')
            body.append(f'<iframe src="notebooks/{name}.html" title="{html.escape(heading)}" loading="lazy"></iframe>')
        body.append("</section>")
        sections.append("\n".join(body))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n"
            "<p>Every figure, table and demo of the talk, in the talk's order, rebuilt by "
            "<code>snakemake figures/</code> from <code>results/</code>. Figures come as PNG (slides), PDF and "
            "SVG (print); the demos are the executed notebooks.</p>\n"
            "<nav><ol>\n" + "\n".join(toc) + "\n</ol></nav>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def write_index(fig_dir, out) -> Path:
    missing = [f for f in all_files() if not (Path(fig_dir) / f).exists()]
    if missing:
        raise FileNotFoundError(f"index.html would reference missing files in {fig_dir}: {', '.join(missing)}")
    out = Path(out)
    out.write_text(build_index(fig_dir), encoding="utf-8")
    return out


def collect(src, dest, files) -> list[Path]:
    """Copy ``files`` (paths under ``src``) into ``dest``, keeping their paths relative to ``src``."""
    src, dest = Path(src).resolve(), Path(dest)
    copied = []
    for f in sorted({str(Path(f).resolve()) for f in files}):
        rel = Path(f).relative_to(src)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        copied.append(target)
    return copied
