"""homekit_python (package "homekit" 0.19.0) controller against the ironclad accessory over
127.0.0.1; its zeroconf lookup is replaced by the given port. This stack strips leading zero
bytes from A, S, K and the SRP proof, and has its own HTTP client.

usage: hkpy_controller.py rounds N PORT DEVICE-ID
  a wrong code first (must fail), then N consecutive x (pair-setup, pair-verify, remove); every
  25th round also reads /accessories and On and lists the pairings. Exit status 0 only if every
  round succeeded.

Known homekit_python 0.19.0 bug (http_impl/response.py, HttpResponse.parse): in a session
response, body bytes before a CR LF pair are dropped. A pairing list whose controller key contains
0D 0A (about 1 key in 2000) therefore arrives truncated (and only after a 10 s read timeout),
whatever the accessory (HAP-python alike). Such rounds skip the list step and are counted.
"""
import logging
import sys
import time
import traceback

import homekit.controller.controller as hc
import homekit.controller.ip_implementation as hip

PIN = "031-45-154"


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)
    _, cmd, n, port, device_id = sys.argv
    assert cmd == "rounds"
    n, port = int(n), int(port)
    lookup = lambda *_a, **_k: {"ip": "127.0.0.1", "port": port}  # bypass zeroconf
    hc.find_device_ip_and_port = lookup
    hip.find_device_ip_and_port = lookup

    c = hc.Controller()
    try:
        c.perform_pairing("wrong", device_id, "111-22-333")
        print("FAIL wrong setup code accepted", flush=True)
        raise SystemExit(1)
    except Exception as e:  # homekit_python raises AuthenticationError here
        print(f"OK   wrong setup code refused: {type(e).__name__}", flush=True)

    failures, crlf_keys, start = 0, 0, time.perf_counter()
    for i in range(n):
        c = hc.Controller()
        try:
            c.perform_pairing("acc", device_id, PIN)
            p = c.get_pairings()["acc"]
            if i % 25 == 0:
                p.list_accessories_and_characteristics()
                r = p.get_characteristics([(1, 11)])
                assert "value" in r[(1, 11)], r
                if b"\r\n" in bytes.fromhex(p.pairing_data["iOSDeviceLTPK"]):
                    crlf_keys += 1  # see the module doc: homekit_python cannot read this list
                else:
                    listed = p.list_pairings()
                    assert len(listed) == 1 and listed[0]["controllerType"] == "admin", listed
            c.remove_pairing("acc")  # over a new pair-verify session: the pairing works
        except Exception as e:  # report with the traceback; later rounds would only fail as Unavailable
            failures += 1
            print(f"FAIL round {i}: {type(e).__name__}: {e}\n{traceback.format_exc()}", flush=True)
            break
    dt = time.perf_counter() - start
    print(("OK   " if failures == 0 else "FAIL ") + f"{n - failures}/{n} homekit_python rounds in {dt:.1f} s "
          f"({dt / max(n, 1) * 1000:.0f} ms per round; {crlf_keys} list steps skipped for a CR LF in the key)",
          flush=True)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
