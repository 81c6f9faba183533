"""Loads libbreakwater through ctypes for the Python checks of the C ABI.

The Python package proper comes with the Python bindings; these tests use the C ABI
directly, as the package will, so they pin what it relies on.
"""
import ctypes
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


class Permit(ctypes.Structure):
    _fields_ = [
        ("opaque", ctypes.c_uint64 * 6),
        ("injected_latency_ns", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


def _load():
    path = os.environ.get("BREAKWATER_LIB", str(ROOT / "target" / "release" / "libbreakwater.so"))
    lib = ctypes.CDLL(path)
    p = ctypes.c_void_p
    lib.bw_abi_version.restype = ctypes.c_uint32
    lib.bw_engine_from_toml.argtypes = [ctypes.c_char_p, p, ctypes.POINTER(p)]
    lib.bw_engine_from_toml.restype = ctypes.c_int32
    lib.bw_engine_policy.argtypes = [p, ctypes.c_char_p, ctypes.POINTER(p)]
    lib.bw_engine_policy.restype = ctypes.c_int32
    lib.bw_engine_prometheus.argtypes = [p, ctypes.POINTER(p)]
    lib.bw_engine_prometheus.restype = ctypes.c_int32
    lib.bw_engine_health.argtypes = [p, ctypes.POINTER(p), ctypes.POINTER(ctypes.c_int32)]
    lib.bw_engine_health.restype = ctypes.c_int32
    lib.bw_engine_free.argtypes = [p]
    lib.bw_policy_free.argtypes = [p]
    lib.bw_string_free.argtypes = [p]
    lib.bw_policy_acquire.argtypes = [p, ctypes.c_int32, ctypes.POINTER(Permit), ctypes.POINTER(ctypes.c_uint64)]
    lib.bw_policy_acquire.restype = ctypes.c_int32
    lib.bw_policy_complete.argtypes = [p, ctypes.POINTER(Permit), ctypes.c_int32, ctypes.c_uint64]
    lib.bw_policy_complete.restype = ctypes.c_int32
    lib.bw_last_error_message.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.bw_last_error_message.restype = ctypes.c_size_t
    return lib


@pytest.fixture(scope="session")
def lib():
    return _load()


def take_string(lib, pointer):
    """Copies a library-owned string and frees it."""
    text = ctypes.string_at(pointer).decode("utf-8")
    lib.bw_string_free(pointer)
    return text


def last_error(lib):
    buf = ctypes.create_string_buffer(1024)
    lib.bw_last_error_message(buf, len(buf))
    return buf.value.decode("utf-8")
