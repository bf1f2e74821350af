"""MkDocs hooks (``hooks:`` in mkdocs.yml): the home page and the API reference are generated.

Home page: the repository's README.md. It is the project's front page on GitHub and on PyPI, so it
is written once and not copied into ``docs/`` (a copy would drift). MkDocs only reads pages inside
``docs_dir``, so the README is added as a generated ``index.md`` with its links, which are relative
to the repository root, rewritten: ``docs/x.md`` becomes ``x.md`` (a page of the site, checked by
the strict build like any other link) and a link to any other file of the repository becomes its
URL under ``repo_url`` (an external link: the site does not publish source files).

API reference: one page per public module of the package, found by walking its folder, so a module
added later is documented without anyone writing a page for it. A module or package whose name
starts with ``_`` is internal and left out (what a public class inherits from it is shown on that
class). A package gets a page only when its ``__init__.py`` has content. The nav entry
``api/index.md`` in mkdocs.yml is expanded into the section listing these pages, one subsection
per subpackage. The pages hold ``::: module`` lines that mkdocstrings renders from the docstrings
(statically, with griffe: the modules are not imported).

Sphinx roles in docstrings (``:class:`Name```, ``:meth:`~pkg.mod.Cls.method```): the docstrings
use the Sphinx field style, which mkdocstrings parses, but it renders roles as raw text. The griffe
extension :class:`SphinxRoles` (``extensions:`` in mkdocs.yml) turns each into a cross-reference
before the docstring is parsed; with ``scoped_crossrefs`` a short name resolves as Python would
from the docstring's own scope (its module's imports, its class's members). A target that resolves
to nothing fails the strict build like any other broken reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from griffe import Extension, Object
from mkdocs.structure.files import File, Files

INDEX = "index.md"
PACKAGE = "airflow_provider"
API_DIR = "api"
API_INDEX = f"{API_DIR}/index.md"
API_TITLE = "API reference"

# The target of an inline Markdown link or image: ``](target)`` or ``](target "title")``.
_LINK_TARGET = re.compile(r"(\]\()([^)\s]+)")
# Targets left alone: URLs with a scheme (http:, mailto:...), protocol-relative URLs and anchors.
_NOT_A_REPO_PATH = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")


# A Sphinx role naming a Python object: ``:class:`x.Y```, ``:py:meth:`~x.Y.z```; ``~`` shows the last
# name only. ``:role:`title <target>``` is not used in this package's docstrings and is left alone.
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const):`(~?)([\w.]+)`")


def roles_to_crossrefs(text: str) -> str:
    """Sphinx roles rewritten as mkdocstrings cross-references: ``[`title`][target]``."""

    def rewrite(match: re.Match[str]) -> str:
        tilde, target = match.groups()
        title = target.rsplit(".", 1)[-1] if tilde else target
        return f"[`{title}`][{target}]"

    return _ROLE.sub(rewrite, text)


class SphinxRoles(Extension):
    """Griffe extension: the roles of every docstring become cross-references (see the module doc)."""

    def on_object(self, *, obj: Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = roles_to_crossrefs(obj.docstring.value)


def readme_as_index(readme: str, docs_dir: str, repo_url: str) -> str:
    """The README with its repository-relative links rewritten for a page at the site's root."""
    docs_prefix = docs_dir.strip("/") + "/"
    blob = repo_url.rstrip("/") + "/blob/main/"

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if _NOT_A_REPO_PATH.match(target):
            return match.group(0)
        path = target.removeprefix("./")
        if path.startswith(docs_prefix):
            return match.group(1) + path.removeprefix(docs_prefix)
        return match.group(1) + blob + path

    return _LINK_TARGET.sub(rewrite, readme)


@dataclass(frozen=True)
class ApiPage:
    """One generated API page: the module it documents and where the page lives in the site."""

    module: str  # dotted name, e.g. "airflow_provider.hooks.nextmv"
    path: str  # e.g. "api/hooks/nextmv.md"

    @property
    def parts(self) -> tuple[str, ...]:
        """The module's name below the package, e.g. ``("hooks", "nextmv")``."""
        return tuple(self.module.split(".")[1:])


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def public_modules(root: Path, package: str = PACKAGE) -> list[str]:
    """Dotted names of the package's public modules and non-empty packages, sorted.

    Read from the file tree (nothing is imported). Subpackages without ``__init__.py`` are not
    packages and are skipped, as is everything below a private name.
    """
    base = root / package
    found: list[str] = []
    for init in sorted(base.rglob("__init__.py")):
        pkg_dir = init.parent
        rel = pkg_dir.relative_to(root).parts
        if not all(_is_public(p) for p in rel) or not all(
            (root.joinpath(*rel[:i]) / "__init__.py").is_file() for i in range(1, len(rel) + 1)
        ):
            continue
        if init.read_text(encoding="utf-8").strip():
            found.append(".".join(rel))
        for mod in sorted(pkg_dir.glob("*.py")):
            if mod.name != "__init__.py" and _is_public(mod.stem):
                found.append(".".join((*rel, mod.stem)))
    return sorted(found, key=lambda m: m.split("."))


def api_pages(modules: list[str]) -> list[ApiPage]:
    """Where each module's page goes: ``api/<sub>/<module>.md``; a package's is its ``index.md``.

    The package itself is described on ``api/index.md``, the section's first page.
    """
    pages: list[ApiPage] = []
    packages = {m for m in modules if any(o.startswith(m + ".") for o in modules)}
    for module in modules:
        parts = module.split(".")[1:]
        if not parts:
            continue  # the top package: on api/index.md
        if module in packages:
            pages.append(ApiPage(module, "/".join((API_DIR, *parts, INDEX))))
        else:
            pages.append(ApiPage(module, "/".join((API_DIR, *parts)) + ".md"))
    return pages


def api_nav(pages: list[ApiPage]) -> list:
    """The API section's nav: the index, then top-level modules, then one subsection per package."""
    nav: list = [{"Overview": API_INDEX}]
    sections: dict[str, list] = {}
    for page in pages:
        head, *rest = page.parts
        if not rest and not page.path.endswith("/" + INDEX):
            nav.append({head: page.path})
        else:
            title = "/".join(rest) if rest else "overview"
            sections.setdefault(head, []).append({title: page.path})
    nav.extend({name: entries} for name, entries in sections.items())
    return nav


def api_index(package: str, pages: list[ApiPage]) -> str:
    """The API section's first page: the package's docstring and a link to every module page."""
    lines = [
        f"# {API_TITLE}",
        "",
        "Generated from the docstrings: one page per public module of the package (names",
        "starting with `_` are internal). A new module gets its page without any edit here.",
        "",
        f"::: {package}",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "",
        "## Modules",
        "",
    ]
    lines += [f"- [`{p.module}`]({Path(p.path).relative_to(API_DIR).as_posix()})" for p in pages]
    return "\n".join(lines) + "\n"


def _expand_api_nav(nav: list, section: list) -> bool:
    """Replace the nav entry that points at ``api/index.md`` with the generated section."""
    for i, item in enumerate(nav):
        if item == API_INDEX:
            nav[i] = {API_TITLE: section}
            return True
        if isinstance(item, dict):
            for title, value in item.items():
                if value == API_INDEX:
                    item[title] = section
                    return True
                if isinstance(value, list) and _expand_api_nav(value, section):
                    return True
    return False


def _root(config) -> Path:
    return Path(config["config_file_path"]).parent


def on_config(config):
    """Build the API section of the nav (appended at the end if mkdocs.yml does not place it)."""
    pages = api_pages(public_modules(_root(config)))
    section = api_nav(pages)
    if config["nav"] is not None and not _expand_api_nav(config["nav"], section):
        config["nav"].append({API_TITLE: section})
    return config


def on_files(files: Files, config) -> Files:
    """Add the README as the home page (unless ``docs/`` has an ``index.md``) and the API pages."""
    root = _root(config)
    if files.get_file_from_path(INDEX) is None:
        docs_dir = Path(config["docs_dir"]).relative_to(root).as_posix()
        readme = (root / "README.md").read_text(encoding="utf-8")
        content = readme_as_index(readme, docs_dir, config["repo_url"])
        files.append(File.generated(config, INDEX, content=content))
    pages = api_pages(public_modules(root))
    if files.get_file_from_path(API_INDEX) is None:
        files.append(File.generated(config, API_INDEX, content=api_index(PACKAGE, pages)))
    for page in pages:
        if files.get_file_from_path(page.path) is None:
            files.append(File.generated(config, page.path, content=f"::: {page.module}\n"))
    return files
