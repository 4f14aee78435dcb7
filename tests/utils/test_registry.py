import pytest

from usvid.utils.registry import Registry


def test_register_and_get_by_decorator_and_call():
    reg = Registry("THINGS")

    @reg.register()
    class Alpha:
        pass

    def beta():
        return 2

    reg.register(beta, name="Beta")
    assert reg.get("Alpha") is Alpha
    assert reg.get("Beta")() == 2
    assert "Alpha" in reg and "Gamma" not in reg
    assert dict(reg) == {"Alpha": Alpha, "Beta": beta}


def test_unknown_name_lists_registered_and_suggests_closest():
    reg = Registry("META_ARCH")
    reg.register(lambda: None, name="UltraDet")
    with pytest.raises(KeyError) as err:
        reg.get("UltraDett")
    msg = str(err.value)
    assert "META_ARCH" in msg and "UltraDet" in msg and "Did you mean" in msg


def test_duplicate_registration_is_an_error():
    reg = Registry("X")
    reg.register(lambda: None, name="a")
    with pytest.raises(KeyError, match="already registered"):
        reg.register(lambda: None, name="a")
