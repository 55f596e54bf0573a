"""aiohomekit 4.0.1 controller against the ironclad accessory over 127.0.0.1, without zeroconf.

usage:
  aiohk_controller.py pair PORT PAIRING.json DEVICE-ID ANCHOR.pem   wrong code (must fail), then
        pair-setup with Method=PairSetupWithAuth (the ironclad accessory answers M4 with its device
        certificate, which aiohomekit ignores, as it ignores MFi certificates), pair-verify,
        /accessories, read + write On and Name, write a cloud delegation (TLV8: version, URL, the
        CA in ANCHOR.pem, a claim token), list pairings; keeps the pairing (PAIRING.json).
  aiohk_controller.py verify-remove PORT PAIRING.json     pair-verify with the stored pairing
        (PORT may be new: the accessory restarted), read, list, remove our pairing.
  aiohk_controller.py busy PORT DEVICE-ID                 two overlapping pair-setups: the second
        must get kTLVError_Busy; the first then completes; remove.
  aiohk_controller.py rounds N PORT DEVICE-ID             N consecutive x (pair-setup, pair-verify,
        remove); every 25th round also reads On.
Prints one line per check on stdout; exit status 0 only if everything held.
"""
import asyncio
import base64
import json
import logging
import sys
import time
import types

from aiohomekit.characteristic_cache import CharacteristicCacheMemory
from aiohomekit.controller.ip.discovery import IpDiscovery
from aiohomekit.controller.ip.pairing import IpPairing
from aiohomekit.exceptions import AuthenticationError, BusyError
from aiohomekit.model import Categories
from aiohomekit.model.feature_flags import FeatureFlags
from aiohomekit.model.status_flags import StatusFlags
from aiohomekit.zeroconf import HomeKitService

PIN = "031-45-154"
ON, NAME, DELEGATION = (1, 11), (1, 12), (1, 14)
ENDPOINT, CLAIM = b"https://cloud.example.com:8443", b"claim-from-aiohomekit"

# aiohomekit only needs .pairings and ._char_cache from its controller object here.
ctrl = types.SimpleNamespace(pairings={}, _char_cache=CharacteristicCacheMemory())


def tlv8(items) -> bytes:
    """TLV8 with values over 255 bytes split into fragments (written here, not borrowed)."""
    out = b""
    for ty, value in items:
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]
        out += b"".join(bytes([ty, len(c)]) + c for c in chunks)
    return out


def service(port: int, device_id: str, flags: int = 0) -> HomeKitService:
    """What zeroconf would have produced from the _hap._tcp TXT record."""
    return HomeKitService(name="ironclad", id=device_id.lower(), model="ironclad-hap", feature_flags=FeatureFlags(flags),
                          status_flags=StatusFlags(1), config_num=1, state_num=1, category=Categories.SWITCH,
                          protocol_version="1.1", type="_hap._tcp.local.", address="127.0.0.1",
                          addresses=["127.0.0.1"], port=port)


def check(ok: bool, what: str) -> None:
    print(("OK   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        raise SystemExit(1)


async def pair(port: int, device_id: str, pin: str = PIN, flags: int = 0) -> IpPairing:
    disco = IpDiscovery(ctrl, service(port, device_id, flags))
    finish = await disco.async_start_pairing("ironclad")
    try:
        return await finish(pin)
    finally:
        await disco.close()


async def cmd_pair(port: int, pfile: str, device_id: str, anchor_file: str) -> None:
    try:
        await pair(port, device_id, "111-22-333")
        check(False, "wrong setup code refused")
    except AuthenticationError:
        check(True, "wrong setup code refused with Authentication")
    # Feature flag 1 (authentication coprocessor): aiohomekit sends Method=PairSetupWithAuth.
    p = await pair(port, device_id, flags=int(FeatureFlags.SUPPORTS_APPLE_AUTHENTICATION_COPROCESSOR))
    data = p.pairing_data
    check(data["AccessoryPairingID"].upper() == device_id.upper(), "paired; AccessoryPairingID " + data["AccessoryPairingID"])
    accs = await p.list_accessories_and_characteristics()
    types_ = {c["type"] for s in accs[0]["services"] for c in s["characteristics"]}
    check("00000025-0000-1000-8000-0026BB765291" in types_, "/accessories lists On")
    r = await p.get_characteristics([ON, NAME])
    check(r[ON]["value"] is False and isinstance(r[NAME]["value"], str), f"read On/Name over the session: {r}")
    w = await p.put_characteristics([(1, 11, True), (1, 12, "kitchen lamp")])
    check(w == {}, f"write On=True, Name='kitchen lamp': {w}")
    r = await p.get_characteristics([ON, NAME])
    check(r[ON]["value"] is True and r[NAME]["value"] == "kitchen lamp", f"read back: {r}")
    anchor = open(anchor_file, "rb").read()
    delegation = tlv8([(1, b"\x01"), (2, ENDPOINT), (3, anchor), (4, CLAIM)])
    w = await p.put_characteristics([(1, 14, base64.b64encode(delegation).decode())])
    check(w == {}, f"write the cloud delegation ({len(delegation)} bytes of TLV8)")
    bad = tlv8([(1, b"\x01"), (2, b"http://plain.example"), (3, anchor), (4, CLAIM)])
    w = await p.put_characteristics([(1, 14, base64.b64encode(bad).decode())])
    check(w.get(DELEGATION, {}).get("status") == -70410, f"a delegation to a plain http URL is refused: {w}")
    r = await p.get_characteristics([DELEGATION])
    check(r[DELEGATION].get("status") == -70405, f"the cloud delegation is write-only: {r}")
    listed = await p.list_pairings()
    check(len(listed) == 1 and listed[0]["pairingId"] == data["iOSPairingId"] and listed[0]["permissions"] == 1,
          f"list pairings: {listed}")
    json.dump(data, open(pfile, "w"), indent=1)
    await p.close()


async def cmd_verify_remove(port: int, pfile: str) -> None:
    data = json.load(open(pfile))
    data["AccessoryPort"] = port
    p = IpPairing(ctrl, data)
    r = await p.get_characteristics([NAME])
    check(isinstance(r[NAME]["value"], str), f"pair-verify (after restart) and read: {r}")
    listed = await p.list_pairings()
    check([x["pairingId"] for x in listed] == [data["iOSPairingId"]], "pairing survived the restart")
    check(await p.remove_pairing(data["iOSPairingId"]) is True, "removed our pairing")
    await p.close()


async def cmd_busy(port: int, device_id: str) -> None:
    first = IpDiscovery(ctrl, service(port, device_id))
    second = IpDiscovery(ctrl, service(port, device_id))
    finish = await first.async_start_pairing("one")  # M1/M2 on connection 1
    try:
        await second.async_start_pairing("two")  # M1 on connection 2
        check(False, "second concurrent pair-setup refused")
    except BusyError:
        check(True, "second concurrent pair-setup refused with Busy")
    p = await finish(PIN)
    check(True, "first pair-setup completed")
    check(await p.remove_pairing(p.pairing_data["iOSPairingId"]) is True, "removed")
    await p.close()
    await first.close()
    await second.close()


async def cmd_rounds(n: int, port: int, device_id: str) -> None:
    failures, start = 0, time.perf_counter()
    for i in range(n):
        try:
            p = await pair(port, device_id)
            if i % 25 == 0:
                r = await p.get_characteristics([ON])
                assert "value" in r[ON], r
            # Remove connects with pair-verify first: every round verifies the new pairing.
            assert await p.remove_pairing(p.pairing_data["iOSPairingId"]) is True
            await p.close()
        except Exception as e:  # count, report, go on: the accessory must stay usable
            failures += 1
            print(f"FAIL round {i}: {type(e).__name__}: {e}", flush=True)
            await asyncio.sleep(0.1)
    dt = time.perf_counter() - start
    check(failures == 0, f"{n - failures}/{n} consecutive pair-setup + verify + remove rounds in {dt:.1f} s "
          f"({dt / max(n, 1) * 1000:.0f} ms per round)")


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "pair":
        asyncio.run(cmd_pair(int(args[0]), args[1], args[2], args[3]))
    elif cmd == "verify-remove":
        asyncio.run(cmd_verify_remove(int(args[0]), args[1]))
    elif cmd == "busy":
        asyncio.run(cmd_busy(int(args[0]), args[1]))
    elif cmd == "rounds":
        asyncio.run(cmd_rounds(int(args[0]), int(args[1]), args[2]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
