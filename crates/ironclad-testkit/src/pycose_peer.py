"""pycose as an independent COSE peer for ironclad's interop tests.

Every argument and output is hex (bytes) or plain text; one subcommand per operation:

  verify-sign1 ALG PUBLIC_RAW MESSAGE      verify a COSE_Sign1 (ES256/EdDSA); print JSON
                                           {alg (COSE id), kid, content_type, payload};
                                           exit 1 if bad
  sign1 ALG PKCS8 KID CONTENT_TYPE PAYLOAD make a tagged COSE_Sign1, print it
  decrypt0 KEY EXTERNAL_AAD MESSAGE        decrypt a COSE_Encrypt0 (A256GCM); print plaintext
  encrypt0 KEY KID EXTERNAL_AAD PLAINTEXT  make a COSE_Encrypt0 (A256GCM, random IV)
  decrypt-x25519 PRIVATE_RAW EXTERNAL_AAD MESSAGE
                                           decrypt a COSE_Encrypt whose recipient is
                                           ECDH-ES + HKDF-256 on X25519; print plaintext

pycose 1.1.0 implements ECDH only on EC2 curves; for X25519 this script supplies the ECDH step
(cryptography's X25519) and keeps everything else pycose's own: message and recipient
parsing, the COSE_KDF_Context, HKDF, the Enc_structure and AES-GCM.
"""
import json
import sys

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pycose import headers
from pycose.algorithms import A256GCM, EcdhEsHKDF256, EdDSA, Es256
from pycose.keys import CoseKey, EC2Key, OKPKey, SymmetricKey
from pycose.keys.curves import Ed25519, P256, X25519
from pycose.messages import CoseMessage, Enc0Message, EncMessage, Sign1Message
from pycose.messages.recipient import DirectKeyAgreement

ALGS = {"ES256": Es256, "EdDSA": EdDSA}


def public_key(alg, raw):
    if alg == "ES256":
        assert raw[0] == 4 and len(raw) == 65
        return EC2Key(crv=P256, x=raw[1:33], y=raw[33:])
    return OKPKey(crv=Ed25519, x=raw)


def verify_sign1(alg, public, message):
    msg = CoseMessage.decode(message)
    assert isinstance(msg, Sign1Message), type(msg)
    msg.key = public_key(alg, public)
    if msg.get_attr(headers.Algorithm) is not ALGS[alg]:
        print("algorithm mismatch", file=sys.stderr)
        return 1
    if not msg.verify_signature():
        print("bad signature", file=sys.stderr)
        return 1
    ct = msg.phdr.get(headers.ContentType)
    print(json.dumps({
        "alg": msg.phdr[headers.Algorithm].identifier,
        "kid": msg.phdr.get(headers.KID, b"").hex(),
        "content_type": ct,
        "payload": msg.payload.hex(),
    }))
    return 0


def sign1(alg, pkcs8, kid, content_type, payload):
    der = serialization.load_der_private_key(pkcs8, password=None)
    pem = der.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    key = CoseKey.from_pem_private_key(pem)
    msg = Sign1Message(phdr={headers.Algorithm: ALGS[alg], headers.ContentType: content_type, headers.KID: kid},
                       payload=payload)
    msg.key = key
    print(msg.encode().hex())
    return 0


def decrypt0(key, aad, message):
    msg = CoseMessage.decode(message)
    assert isinstance(msg, Enc0Message), type(msg)
    assert msg.get_attr(headers.Algorithm) is A256GCM
    msg.key = SymmetricKey(k=key)
    msg.external_aad = aad
    print(msg.decrypt().hex())
    return 0


def encrypt0(key, kid, aad, plaintext):
    import os
    msg = Enc0Message(phdr={headers.Algorithm: A256GCM, headers.KID: kid}, uhdr={headers.IV: os.urandom(12)},
                      payload=plaintext, external_aad=aad)
    msg.key = SymmetricKey(k=key)
    print(msg.encode().hex())
    return 0


def decrypt_x25519(private_raw, aad, message):
    private = x25519.X25519PrivateKey.from_private_bytes(private_raw)

    def compute_cek(self, target_alg, ops):
        assert ops == "decrypt"
        assert self.get_attr(headers.Algorithm) is EcdhEsHKDF256
        eph = self.get_attr(headers.EphemeralKey)
        assert isinstance(eph, OKPKey) and eph.crv is X25519, eph
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(eph.x))
        context = self.get_kdf_context(target_alg)
        k = HKDF(algorithm=hashes.SHA256(), length=context.supp_pub_info.key_data_length, salt=None,
                 info=context.encode()).derive(shared)
        return SymmetricKey(k=k, optional_params={})

    DirectKeyAgreement.compute_cek = compute_cek
    msg = CoseMessage.decode(message)
    assert isinstance(msg, EncMessage), type(msg)
    assert msg.get_attr(headers.Algorithm) is A256GCM
    msg.external_aad = aad
    plaintext = msg.decrypt(msg.recipients[0])
    # The content is a symmetric COSE_Key: check pycose reads it as one.
    key = CoseKey.decode(plaintext)
    assert isinstance(key, SymmetricKey) and len(key.k) == 32
    print(plaintext.hex())
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    h = bytes.fromhex
    if cmd == "verify-sign1":
        return verify_sign1(args[0], h(args[1]), h(args[2]))
    if cmd == "sign1":
        return sign1(args[0], h(args[1]), h(args[2]), args[3], h(args[4]))
    if cmd == "decrypt0":
        return decrypt0(h(args[0]), h(args[1]), h(args[2]))
    if cmd == "encrypt0":
        return encrypt0(h(args[0]), h(args[1]), h(args[2]), h(args[3]))
    if cmd == "decrypt-x25519":
        return decrypt_x25519(h(args[0]), h(args[1]), h(args[2]))
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
