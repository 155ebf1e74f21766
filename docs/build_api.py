"""Write the plantlearn API reference (Markdown) from the numpydoc docstrings.

Usage::

    python docs/build_api.py                 # writes docs/api.md
    python docs/build_api.py --output api.md

Offline and with the runtime dependencies only: it imports plantlearn and
reads signatures and docstrings with :mod:`inspect`. The public objects are
those listed in ``__all__`` of ``plantlearn``, ``plantlearn.metrics``,
``plantlearn.datasets`` and ``plantlearn.model_selection``; for classes,
their public methods defined in plantlearn (inherited scikit-learn methods
such as ``get_params`` are listed by name only).
"""

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

MODULES = ("plantlearn", "plantlearn.metrics", "plantlearn.datasets",
           "plantlearn.model_selection")
# numpydoc sections whose bodies are "name : type" entries with indented descriptions.
ENTRY_SECTIONS = {"Parameters", "Returns", "Yields", "Attributes", "Raises", "Warns",
                  "Other Parameters", "Receives", "Warnings"}
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
# reST inline markup -> Markdown: ``literal`` and :role:`target` (or `~target`).
_LITERAL = re.compile(r"``(.+?)``")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|obj|data|exc):`~?([^`]+)`")


def _inline(text):
    return _ROLE.sub(r"`\1`", _LITERAL.sub(r"`\1`", text))


def _split_sections(doc):
    """[(title or None, lines)] of a cleaned docstring."""
    lines = doc.splitlines()
    sections, title, body = [], None, []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and _UNDERLINE.match(lines[i + 1]) \
                and len(lines[i + 1].strip()) >= len(lines[i].strip()) - 1:
            sections.append((title, body))
            title, body = lines[i].strip(), []
            i += 2
            continue
        body.append(lines[i])
        i += 1
    sections.append((title, body))
    return sections


def _dedent_block(lines):
    text = "\n".join(lines)
    return inspect.cleandoc(text) if text.strip() else ""


def _entries(lines):
    """Markdown bullets for a Parameters-like section."""
    out, current = [], None
    for line in lines:
        if not line.strip():
            if current is not None:
                current[1].append("")
            continue
        if not line.startswith((" ", "\t")):
            current = [line.strip(), []]
            out.append(current)
        elif current is not None:
            current[1].append(line.strip())
        else:
            out.append([line.strip(), []])
    md = []
    for head, desc in out:
        name, sep, kind = head.partition(" : ")
        label = f"**`{name.strip()}`**" + (f" : *{kind.strip()}*" if sep else "")
        text = _inline(" ".join(part for part in desc if part))
        md.append(f"- {label}" + (f" — {text}" if text else ""))
    return "\n".join(md)


def _examples(lines):
    text = _dedent_block(lines)
    return f"```pycon\n{text}\n```" if text else ""


def docstring_to_markdown(doc):
    """Convert one numpydoc docstring to Markdown."""
    if not doc:
        return "*No docstring.*"
    doc = inspect.cleandoc(doc)
    parts = []
    for title, lines in _split_sections(doc):
        if title is None:
            body = _dedent_block(lines)
            if body:
                parts.append(_prose(body))
            continue
        parts.append(f"**{title}**")
        if title in ENTRY_SECTIONS:
            parts.append(_entries(lines))
        elif title == "Examples":
            parts.append(_examples(lines))
        elif title == "See Also":
            parts.append(_prose(_dedent_block(lines)))
        else:
            parts.append(_prose(_dedent_block(lines)))
    return "\n\n".join(p for p in parts if p)


def _prose(text):
    """Paragraph text; literal blocks after '::' and doctest lines become code blocks."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i].strip() if lines[i].lstrip().startswith((">>>", "..."))
                             else lines[i])
                i += 1
            out.append("```pycon\n" + "\n".join(block) + "\n```")
            continue
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            code = inspect.cleandoc("\n".join(block))
            out.append(f"```\n{code}\n```")
            continue
        out.append(_inline(line))
        i += 1
    return "\n".join(out).strip()


def _signature(obj, name):
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        sig = "(...)"
    return f"{name}{sig}"


def _class_members(cls, module_prefix="plantlearn"):
    own, inherited = [], []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if not (inspect.isfunction(func) or inspect.ismethod(func) or isinstance(member, property)):
            continue
        target = member.fget if isinstance(member, property) else func
        module = getattr(target, "__module__", "") or ""
        (own if module.startswith(module_prefix) else inherited).append((name, member))
    return own, inherited


def document_object(qualname, obj):
    lines = []
    if inspect.isclass(obj):
        lines.append(f"### `{qualname}`")
        lines.append(f"```python\nclass {_signature(obj, qualname)}\n```")
        lines.append(docstring_to_markdown(inspect.getdoc(obj)))
        own, inherited = _class_members(obj)
        for name, member in own:
            if isinstance(member, property):
                lines.append(f"#### property `{qualname}.{name}`")
                lines.append(docstring_to_markdown(inspect.getdoc(member)))
                continue
            lines.append(f"#### method `{qualname}.{name}`")
            lines.append(f"```python\n{_signature(member, name)}\n```")
            lines.append(docstring_to_markdown(inspect.getdoc(member)))
        if inherited:
            names = ", ".join(f"`{n}`" for n, _ in inherited)
            lines.append(f"*Inherited from scikit-learn:* {names}.")
    else:
        lines.append(f"### `{qualname}`")
        lines.append(f"```python\n{_signature(obj, qualname)}\n```")
        lines.append(docstring_to_markdown(inspect.getdoc(obj)))
    return "\n\n".join(lines)


def build(output):
    import plantlearn

    parts = [
        "# API reference",
        f"plantlearn {plantlearn.__version__}. Generated by `docs/build_api.py` from the "
        "docstrings; do not edit by hand.",
    ]
    toc = []
    body = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        body.append(f"## `{module_name}`")
        summary = (inspect.getdoc(module) or "").split("\n\n")[0]
        if summary:
            body.append(summary)
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            qualname = f"{module_name}.{name}"
            anchor = re.sub(r"[^a-z0-9 -]", "", qualname.lower()).replace(" ", "-")
            toc.append(f"- [`{qualname}`](#{anchor})")
            body.append(document_object(qualname, obj))
    parts.append("\n".join(toc))
    parts.extend(body)
    text = "\n\n".join(parts) + "\n"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(Path(__file__).with_name("api.md")),
                        help="Markdown file to write (default: docs/api.md)")
    args = parser.parse_args(argv)
    path = build(args.output)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
