"""Members' device signatures: transfer intents and acknowledgements signed on a member's own
device (Ed25519, or ECDSA P-256 from WebCrypto) over RFC 8785 canonical JSON, parsed strictly
and checked against the transaction they authorise. Pure: no I/O, no database."""
