#!/usr/bin/env python3
"""An independent transcription of llama2.c's run.c encode() (BOS, dummy prefix, UTF-8 code-point
lookup, byte fallback to byte + 3, best-score pair merges), used to compute the expected ids that
tests/text_llama_tokenizers_test.cpp commits. No dependencies, no network.

    python3 tests/tools/llama2c_encode.py ../shared/data/stories260K/tok512.bin "Once upon a time"
"""
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    offset, vocab, scores = 4, [], []
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        vocab.append(data[offset:offset + length])
        scores.append(score)
        offset += length
    return vocab, scores


def encode(text, vocab, scores, bos=True, eos=False):
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)
    tokens = [1] if bos else []
    raw = text.encode("utf-8")
    if raw:
        tokens.append(lookup[b" "])
    i = 0
    while i < len(raw):
        j = i + 1
        while j < len(raw) and j - i < 4 and (raw[j] & 0xC0) == 0x80:
            j += 1
        cp = raw[i:j]
        if cp in lookup:
            tokens.append(lookup[cp])
        else:
            tokens.extend(b + 3 for b in cp)
        i = j
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):  # run.c includes BOS in the scan
            merged = vocab[tokens[k]] + vocab[tokens[k + 1]]
            if merged in lookup and scores[lookup[merged]] > best_score:
                best_score, best_id, best_idx = scores[lookup[merged]], lookup[merged], k
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    if eos:
        tokens.append(2)
    return tokens


if __name__ == "__main__":
    vocab, scores = load(sys.argv[1])
    for text in sys.argv[2:]:
        print(",".join(map(str, encode(text, vocab, scores))))
