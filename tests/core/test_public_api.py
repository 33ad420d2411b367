"""The package's top-level names: `from mimkd_edge import *` and attribute access agree."""

import mimkd_edge


def test_all_lists_exactly_the_lazy_public_names():
    assert mimkd_edge.__all__ == sorted(mimkd_edge._PUBLIC)


def test_each_public_name_resolves_to_its_module_object():
    for name, module in mimkd_edge._PUBLIC.items():
        assert getattr(mimkd_edge, name).__module__.startswith(module), name
