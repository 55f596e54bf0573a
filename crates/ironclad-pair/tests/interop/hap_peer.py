"""HAP peers for ironclad-pair's interop test, driven over stdin/stdout instead of HTTP.

The peers' own protocol code runs unchanged; only the transport is replaced:
  aiohomekit-controller N   aiohomekit 4.0.1's pair-setup / pair-verify state machines
                            (aiohomekit.protocol), against the Rust accessory.
  homekit-python-controller N   the same with homekit_python 0.19.0 (homekit.protocol), the stack
                            that strips leading zeros everywhere.
  hap-python-accessory N    HAP-python 5.0.0's HAPServerHandler (the object its HTTP server
                            dispatches to) and HAPCrypto session framing, against the Rust controller.

Each message on the pipes is: kind (1 ASCII byte) | length (u32 big-endian) | payload.
  P  pair-setup TLV8          V  pair-verify TLV8
  S  session frames (app data, the Rust side answers b"pong:" + data)
  R  session frames carrying a /pairings TLV8 request or response
  X  end of one round (a new connection)    Q  quit
Logs go to stderr. Exit status 0 only if every round succeeded.
"""
import asyncio
import logging
import struct
import sys
import tempfile
import uuid

PIN = "031-45-154"
log = logging.getLogger("hap_peer")


def send(kind: bytes, payload: bytes) -> None:
    sys.stdout.buffer.write(kind + struct.pack(">I", len(payload)) + payload)
    sys.stdout.buffer.flush()


def recv() -> tuple[bytes, bytes]:
    head = sys.stdin.buffer.read(5)
    if len(head) < 5:
        raise EOFError("ironclad side closed the pipe")
    (length,) = struct.unpack(">I", head[1:])
    return head[:1], sys.stdin.buffer.read(length)


# ------------------------------------------------------------------------------------ controllers
class Framing:
    """HAP session framing as aiohomekit's SecureHomeKitProtocol does it (same primitives)."""

    def __init__(self, c2a: bytes, a2c: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.enc, self.dec = ChaCha20Poly1305(c2a), ChaCha20Poly1305(a2c)
        self.out = self.inc = 0

    @staticmethod
    def nonce(counter: int) -> bytes:
        return struct.pack("<LQ", 0, counter)

    def seal(self, data: bytes) -> bytes:
        out = b""
        while data:
            block, data = data[:1024], data[1024:]
            length = struct.pack("<H", len(block))
            out += length + self.enc.encrypt(self.nonce(self.out), block, length)
            self.out += 1
        return out

    def open(self, data: bytes) -> bytes:
        out = b""
        while data:
            (n,) = struct.unpack("<H", data[:2])
            out += self.dec.decrypt(self.nonce(self.inc), data[2 : 2 + n + 16], data[:2])
            data = data[2 + n + 16 :]
            self.inc += 1
        return out


def exchange(framing: Framing, kind: bytes, plaintext: bytes) -> bytes:
    send(kind, framing.seal(plaintext))
    k, body = recv()
    assert k == kind
    return framing.open(body)


def controller(rounds: int, stack: str) -> None:
    """Runs `stack`'s own pair-setup and pair-verify state machines against the Rust accessory."""
    from aiohomekit.protocol.tlv import TLV

    if stack == "aiohomekit":
        from aiohomekit.exceptions import AuthenticationError
        from aiohomekit.protocol import get_session_keys, perform_pair_setup_part1, perform_pair_setup_part2

        encode = lambda request: bytes(TLV.encode_list(request))
        decode = lambda body, expected: TLV.decode_bytes(body, expected=expected)

        def setup1(i):  # Method=PairSetupWithAuth when the accessory advertises MFi support
            return perform_pair_setup_part1(with_auth=bool(i % 2))

        def keys(pairing):
            _, derive = drive(get_session_keys(pairing), b"V")
            return (derive(b"Control-Salt", b"Control-Write-Encryption-Key"),
                    derive(b"Control-Salt", b"Control-Read-Encryption-Key"))
    else:
        import tlv8
        from homekit.exceptions import AuthenticationError
        from homekit.protocol import get_session_keys, perform_pair_setup_part1, perform_pair_setup_part2

        encode = tlv8.encode
        decode = tlv8.decode
        setup1 = lambda i: perform_pair_setup_part1()
        keys = lambda pairing: drive(get_session_keys(pairing), b"V")

    def drive(gen, kind: bytes):
        """Runs a protocol generator with the Rust accessory as the peer."""
        try:
            request, expected = next(gen)
            while True:
                send(kind, encode(request))
                k, body = recv()
                assert k == kind, (k, kind)
                request, expected = gen.send(decode(body, expected))
        except StopIteration as done:
            return done.value

    # One wrong code first: Authentication, and the accessory's counter goes up.
    salt, public = drive(setup1(0), b"P")
    try:
        drive(perform_pair_setup_part2("111-22-333", str(uuid.uuid4()), salt, public), b"P")
        raise AssertionError("wrong setup code accepted")
    except AuthenticationError:
        log.info("%s: wrong code refused with Authentication", stack)
    send(b"X", b"")

    for i in range(rounds):
        ios_id = str(uuid.uuid4())
        salt, public = drive(setup1(i), b"P")
        pairing = drive(perform_pair_setup_part2(PIN, ios_id, salt, public), b"P")
        assert pairing["AccessoryPairingID"] == "AA:BB:CC:DD:EE:FF", pairing
        framing = Framing(*keys(pairing))
        payload = (b"GET /accessories HTTP/1.1\r\n\r\n" + bytes(range(256)) * (i % 9)) + str(i).encode()
        assert exchange(framing, b"S", payload) == b"pong:" + payload
        listed = TLV.decode_bytes(exchange(framing, b"R", bytes(TLV.encode_list([
            (TLV.kTLVType_State, TLV.M1), (TLV.kTLVType_Method, TLV.ListPairings)]))))
        ids = [bytes(v).decode() for t, v in listed if t == TLV.kTLVType_Identifier]
        keys_ = [bytes(v).hex() for t, v in listed if t == TLV.kTLVType_PublicKey]
        assert ids == [ios_id] and keys_ == [pairing["iOSDeviceLTPK"]], listed
        removed = TLV.decode_bytes(exchange(framing, b"R", bytes(TLV.encode_list([
            (TLV.kTLVType_State, TLV.M1), (TLV.kTLVType_Method, TLV.RemovePairing),
            (TLV.kTLVType_Identifier, ios_id.encode())]))))
        assert dict(removed) == {TLV.kTLVType_State: TLV.M2}, removed
        send(b"X", b"")
    send(b"Q", b"")
    log.info("%s controller: %d rounds ok", stack, rounds)


# ------------------------------------------------------------------------- hap-python accessory
class NoZeroconf:  # replaces AsyncZeroconf: nothing is multicast
    async def async_register_service(self, *a, **k): ...
    async def async_unregister_service(self, *a, **k): ...
    async def async_update_service(self, *a, **k): ...
    async def async_close(self): ...

    def __getattr__(self, name):
        return lambda *a, **k: None


async def hap_python_accessory(rounds: int) -> None:
    import h11
    from pyhap.accessory import Accessory
    from pyhap.accessory_driver import AccessoryDriver
    from pyhap.hap_crypto import HAPCrypto
    from pyhap.hap_handler import HAPServerHandler

    state = tempfile.mkdtemp(prefix="ironclad-hap-") + "/accessory.state"
    driver = AccessoryDriver(address="127.0.0.1", port=51826, pincode=PIN.encode(), persist_file=state,
                             mac="AA:BB:CC:DD:EE:FF", async_zeroconf_instance=NoZeroconf())
    driver.add_accessory(Accessory(driver, "ironclad-interop"))

    def post(handler, path: str, body: bytes) -> bytes:
        request = h11.Request(method="POST", target=path, headers=[("Host", "127.0.0.1")])
        response = handler.dispatch(request, body)
        handler.crypto_key = getattr(response, "shared_key", None) or handler.crypto_key
        return response.body

    done = 0
    handler = HAPServerHandler(driver, ("127.0.0.1", 1))
    handler.crypto_key, crypto = None, None
    while True:
        kind, body = recv()
        if kind == b"Q":
            break
        if kind == b"X":
            done += 1
            handler = HAPServerHandler(driver, ("127.0.0.1", 1))
            handler.crypto_key, crypto = None, None
            continue
        if kind in (b"P", b"V"):
            send(kind, post(handler, "/pair-setup" if kind == b"P" else "/pair-verify", body))
            if handler.crypto_key and crypto is None:
                crypto = HAPCrypto(handler.crypto_key)
            continue
        crypto.receive_data(body)
        plaintext = crypto.decrypt()
        reply = b"pong:" + plaintext if kind == b"S" else post(handler, "/pairings", plaintext)
        send(kind, b"".join(crypto.encrypt(reply)))
    log.info("hap-python accessory: %d rounds", done)
    if done != rounds:
        raise AssertionError(f"{done} rounds, expected {rounds}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("hap_peer").setLevel(logging.INFO)
    mode, rounds = sys.argv[1], int(sys.argv[2])
    if mode in ("aiohomekit-controller", "homekit-python-controller"):
        controller(rounds, mode.split("-")[0])
    elif mode == "hap-python-accessory":
        asyncio.run(hap_python_accessory(rounds))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
