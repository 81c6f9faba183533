"""A breaker-protected call from Python through the C ABI (ctypes). The Python package
with exceptions, decorators and asyncio comes with the Python bindings; this is the
layer under it. Run: make -C bindings/c lib && python3 examples/quickstart/python/quickstart.py
"""
import ctypes
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[3]
lib = ctypes.CDLL(str(ROOT / "target" / "release" / "libbreakwater.so"))


class Permit(ctypes.Structure):  # bw_permit, 64 bytes, passed by pointer
    _fields_ = [("opaque", ctypes.c_uint64 * 6), ("injected_latency_ns", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]


lib.bw_status_str.restype = ctypes.c_char_p
engine, payments = ctypes.c_void_p(), ctypes.c_void_p()
policies = b"[policies.payments.circuit_breaker]\nminimum_calls = 4\nfailure_rate_threshold = 50\n"
assert lib.bw_engine_from_toml(policies, None, ctypes.byref(engine)) == 0
assert lib.bw_engine_policy(engine, b"payments", ctypes.byref(payments)) == 0

for i in range(6):
    permit, retry_after = Permit(), ctypes.c_uint64()
    status = lib.bw_policy_acquire(payments, 1, ctypes.byref(permit), ctypes.byref(retry_after))
    if status != 0:
        print(f"call {i}: {lib.bw_status_str(status).decode()}, retry after {retry_after.value / 1e9:.1f} s")
        continue
    ok = i % 2 == 0  # a flaky dependency
    lib.bw_policy_complete(payments, ctypes.byref(permit), 0 if ok else 1, ctypes.c_uint64(2**64 - 1))
    print(f"call {i}: ok={ok}")

lib.bw_policy_free(payments)
lib.bw_engine_free(engine)
