"""The tamper-evident journal: each community's entries as an append-only RFC 9162 Merkle tree
(`merkle`), and the checkpoints that commit to it as C2SP signed notes (`note`). Pure logic: no
I/O, no database; the store keeps leaf hashes and interior nodes and asks these modules for roots,
proofs and signatures."""
