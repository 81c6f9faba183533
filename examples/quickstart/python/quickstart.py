import breakwater

engine = breakwater.Engine.from_toml("""
[policies.payments.circuit_breaker]
minimum_calls = 4
failure_rate_threshold = 50
""")
payments = engine["payments"]

@payments(fallback=lambda error: f"queued ({error})")
def charge(order: int) -> str:
    if order % 2:  # a flaky dependency
        raise ConnectionError("payment service reset the connection")
    return f"order {order} charged"

for order in range(6):
    print(charge(order))
