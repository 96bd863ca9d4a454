"""proftpy.net"""

POLL_MAX_MS = 2**31 - 1     # poll(2) takes an int of milliseconds: about 24.8 days


def poll_ms(seconds: float) -> int:
    """A wait in seconds as poll()'s timeout: rounded up, at most POLL_MAX_MS (a TimeoutStalled or
    TLSTimeoutHandshake of years would not fit it; waiting 24.8 days and again is the same)."""
    return min(int(seconds * 1000) + 1, POLL_MAX_MS)
