"""python/lipattn.pyi names every public attribute of the module, and the module has every name the
stub declares (so editors complete exactly the API that exists), with docstrings on everything."""
import ast
import inspect
import pathlib

import lipattn

STUB = pathlib.Path(__file__).resolve().parents[1] / "lipattn.pyi"


def stub_tree():
    return ast.parse(STUB.read_text())


def public(names):
    return {n for n in names if not n.startswith("_")}


def test_stub_names_every_public_attribute_and_nothing_else():
    declared = set()
    for node in stub_tree().body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            declared.add(node.name)
        elif isinstance(node, ast.Assign):
            declared.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert public(declared) == public(dir(lipattn))


def test_stub_classes_declare_the_module_classes_methods():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
            continue
        cls = getattr(lipattn, node.name)
        methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        for base in node.bases:  # the stub-only base _Record declares the methods every result has
            if isinstance(base, ast.Name) and base.id == "_Record":
                record = next(c for c in stub_tree().body if isinstance(c, ast.ClassDef) and c.name == "_Record")
                methods |= {n.name for n in record.body if isinstance(n, ast.FunctionDef)}
        runtime = {n for n, v in vars(cls).items() if callable(v) or isinstance(v, (property, staticmethod))}
        runtime |= {n for n in dir(cls) if isinstance(inspect.getattr_static(cls, n), property)}
        runtime = public(runtime) | (runtime & {"__getattr__", "__getitem__", "__contains__"})
        if issubclass(cls, BaseException):
            continue
        assert public(methods) | (methods & {"__getattr__", "__getitem__", "__contains__"}) == runtime, node.name


def test_every_public_attribute_has_a_docstring():
    for name in public(dir(lipattn)):
        obj = getattr(lipattn, name)
        assert (obj.__doc__ or "").strip(), name
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for member, value in vars(obj).items():
                if not member.startswith("_") and callable(value):
                    assert (value.__doc__ or "").strip(), f"{name}.{member}"
