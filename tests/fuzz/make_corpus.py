#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ and the fixed tokenizers of tests/fuzz/data/
(docs/fuzzing.md): small valid files of each format and a few broken ones. Needs numpy (Debian
python3-numpy) and the shared data (../shared/data: tok512.bin, GPT-2's vocab.json and merges.txt,
BERT's vocab.txt), from which the small tokenizers are cut. Deterministic: rerunning it rewrites the
same bytes. The corpora then grow by fuzzing and are minimised with `scripts/fuzz.sh merge TARGET`,
which keeps these seeds' coverage, so rerun this script only to start a corpus afresh.

    python3 tests/fuzz/make_corpus.py [--shared ../shared/data]
"""
import argparse
import io
import json
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
DATA = HERE / "data"


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    (folder / name).write_bytes(data)


# ---- safetensors and layer files ---------------------------------------------------------------

def safetensors(tensors, metadata=None, dtype="F32"):
    codes = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        a = np.asarray(array, dtype=np.float64)
        if dtype == "BF16":
            raw = (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = a.astype(codes[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def raw_safetensors(header_text, data=b""):
    text = header_text.encode()
    return struct.pack("<Q", len(text)) + text + data


def seeds_safetensors():
    rng = np.random.default_rng(0)
    put("safetensors", "f32_matrix", safetensors({"w": rng.standard_normal((2, 3))}))
    for dtype in ("F64", "F16", "BF16"):
        put("safetensors", f"{dtype.lower()}_vector", safetensors({"v": rng.standard_normal(4)}, dtype=dtype))
    put("safetensors", "metadata_and_scalar", safetensors({"s": np.array(1.5), "e": np.zeros((0, 3))},
                                                          metadata={"format": "pt"}))
    put("safetensors", "i64_position_ids", raw_safetensors(
        '{"position_ids":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]}}', struct.pack("<2q", 0, 1)))
    put("safetensors", "nan_value", safetensors({"w": np.array([1.0, np.nan])}))
    put("safetensors", "truncated_data", safetensors({"w": rng.standard_normal((4, 4))})[:-7])
    put("safetensors", "header_length_too_large", struct.pack("<Q", 1 << 40) + b"{}")
    put("safetensors", "overlap", raw_safetensors(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        bytes(12)))
    put("safetensors", "shape_mismatch", raw_safetensors('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}',
                                                         bytes(8)))
    put("safetensors", "huge_shape", raw_safetensors(
        '{"a":{"dtype":"U8","shape":[4294967296,2147483648,0],"data_offsets":[0,0]}}'))
    put("safetensors", "bad_json", raw_safetensors('{"a":{"dtype":"F32",'))


def seeds_layer_file():
    rng = np.random.default_rng(1)
    d = 4
    qkv = {n: rng.standard_normal((d, d)) * 0.5 for n in ("q.weight", "k.weight", "v.weight")}
    put("layer_file", "qkv_two_heads", bytes([1]) + safetensors(qkv))
    full = dict(qkv, **{"o.weight": rng.standard_normal((d, d)), "q.bias": rng.standard_normal(d),
                        "pre_norm.weight": np.ones(d), "pre_norm.bias": np.zeros(d)})
    put("layer_file", "qkvo_prenorm_causal", bytes([0b00101100 | 1]) + safetensors(full))
    put("layer_file", "paper_form", bytes([0]) + safetensors({"A": rng.standard_normal((d, d)),
                                                              "V": np.eye(d)}))
    gqa = {"q.weight": rng.standard_normal((8, d)), "k.weight": rng.standard_normal((4, d)),
           "v.weight": rng.standard_normal((4, d)), "q_norm.weight": np.ones(4), "k_norm.weight": np.ones(4)}
    put("layer_file", "gqa_rope_qknorm", bytes([1]) + safetensors(
        gqa, metadata={"rope": "rotate_half", "rope_theta": "10000", "qk_norm_eps": "1e-6"}))
    put("layer_file", "post_norm_rms", bytes([0b11000000]) + safetensors(dict(qkv, **{"post_norm.weight": np.ones(d)})))
    put("layer_file", "missing_v", bytes([0]) + safetensors({"q.weight": np.eye(d), "k.weight": np.eye(d)}))
    put("layer_file", "mismatched_shapes", bytes([0]) + safetensors(
        {"q.weight": np.eye(d), "k.weight": np.eye(3), "v.weight": np.eye(d)}))


# ---- npy ----------------------------------------------------------------------------------------

def npy_bytes(array, version=None):
    buffer = io.BytesIO()
    if version is None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array(buffer, array, version=version)
    return buffer.getvalue()


def seeds_npy():
    rng = np.random.default_rng(2)
    put("npy", "f8_matrix", npy_bytes(rng.standard_normal((3, 4))))
    put("npy", "f4_batch_of_one", npy_bytes(rng.standard_normal((1, 2, 3)).astype("<f4")))
    put("npy", "vector", npy_bytes(rng.standard_normal(5)))
    put("npy", "scalar", npy_bytes(np.array(2.5)))
    put("npy", "empty", npy_bytes(np.zeros((0, 4))))
    put("npy", "version2", npy_bytes(rng.standard_normal((2, 2)), version=(2, 0)))
    put("npy", "fortran", npy_bytes(np.asfortranarray(rng.standard_normal((2, 3)))))
    put("npy", "int64", npy_bytes(np.arange(6).reshape(2, 3)))
    put("npy", "big_endian", npy_bytes(rng.standard_normal(3).astype(">f8")))
    put("npy", "inf_value", npy_bytes(np.array([[1.0, np.inf]])))
    put("npy", "truncated", npy_bytes(rng.standard_normal((4, 4)))[:-5])
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 2), }"
    put("npy", "huge_shape", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    put("npy", "bad_magic", b"\x93NUMPX\x01\x00\x00\x00")


# ---- config.json and the shard index ------------------------------------------------------------

def seeds_config():
    configs = {
        "gpt2": {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
                 "vocab_size": 50257, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                 "n_inner": None, "scale_attn_by_inverse_layer_idx": False},
        "bert": {"model_type": "bert", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
                 "intermediate_size": 3072, "max_position_embeddings": 512, "vocab_size": 30522,
                 "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0,
                 "position_embedding_type": "absolute", "is_decoder": False},
        "llama": {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 4,
                  "num_hidden_layers": 2, "intermediate_size": 172, "max_position_embeddings": 256,
                  "vocab_size": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
                  "tie_word_embeddings": True, "rope_scaling": None},
        "mistral": {"model_type": "mistral", "hidden_size": 32, "num_attention_heads": 4, "sliding_window": 16,
                    "head_dim": 16},
        "qwen2": {"model_type": "qwen2", "hidden_size": 32, "num_attention_heads": 4, "use_sliding_window": True,
                  "sliding_window": 8},
        "wrong_types": {"model_type": "gpt2", "n_embd": "768", "n_head": 12.5},
        "huge_dims": {"model_type": "gpt2", "n_embd": 4611686018427387904, "n_head": 1},
        "unknown_type": {"model_type": "t5"},
        "rope_scaling": {"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}},
    }
    for name, config in configs.items():
        put("config_json", name, json.dumps(config, indent=1))
    put("config_json", "not_an_object", "[1, 2, 3]")
    put("config_json", "bad_json", '{"model_type": "gpt2", ')


def seeds_shard_index():
    index = {"metadata": {"total_size": 1234},
             "weight_map": {"embed.weight": "model-00001-of-00002.safetensors",
                            "lm_head.weight": "model-00002-of-00002.safetensors"}}
    put("shard_index", "valid", json.dumps(index, indent=2))
    put("shard_index", "path_escape", json.dumps({"weight_map": {"a": "../../etc/passwd", "b": "/abs/x"}}))
    put("shard_index", "not_a_string", json.dumps({"weight_map": {"a": 3}}))
    put("shard_index", "no_map", json.dumps({"metadata": {}}))
    put("shard_index", "bad_json", '{"weight_map": {"a": "x.safetensors"')


# ---- llama2.c checkpoints and tokenizer.bin -------------------------------------------------------

def llama2c_checkpoint(version, dim=8, hidden=16, layers=1, heads=2, kv_heads=2, vocab=16, seq_len=4, shared=True):
    head = dim // heads
    kv_dim = dim // heads * kv_heads
    count = vocab * dim + 2 * layers * dim + 2 * layers * dim * dim + 2 * layers * kv_dim * dim
    count += 3 * layers * hidden * dim + dim
    if version == 0:
        count += seq_len * head
        header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq_len)
    else:
        header = struct.pack("<IiiiiiiiiB", 0x616B3432, 1, dim, hidden, layers, heads, kv_heads, vocab, seq_len,
                             1 if shared else 0)
        header += bytes(256 - len(header))
    if not shared:
        count += vocab * dim
    values = np.random.default_rng(version).standard_normal(count).astype("<f4")
    return header + values.tobytes()


def seeds_llama2c_model():
    put("llama2c_model", "legacy", llama2c_checkpoint(0))
    put("llama2c_model", "legacy_unshared", llama2c_checkpoint(0, shared=False))
    put("llama2c_model", "v1_gqa", llama2c_checkpoint(1, heads=2, kv_heads=1))
    put("llama2c_model", "v1_truncated", llama2c_checkpoint(1)[:-4])
    put("llama2c_model", "version2", struct.pack("<Ii", 0x616B3432, 2) + bytes(248))
    put("llama2c_model", "odd_head", struct.pack("<7i", 6, 8, 1, 2, 2, 4, 4) + bytes(64))
    put("llama2c_model", "huge_claim", struct.pack("<7i", 2**30, 2**30, 2**30, 2, 1, 2**30, 2**30))


def tokenizer_bin(pieces, scores, max_length=None):
    max_length = max_length or max(len(p) for p in pieces)
    out = struct.pack("<i", max_length)
    for piece, score in zip(pieces, scores):
        out += struct.pack("<fi", score, len(piece)) + piece
    return out


def read_tokenizer_bin(data):
    pieces, scores, offset = [], [], 4
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        pieces.append(data[offset:offset + length])
        scores.append(score)
        offset += length
    return pieces, scores


def seeds_llama2c_tokenizer(tok512):
    texts = ["Once upon a time, there was a little girl.", "", " leading space", "\xe9t\xe9 \U0001F600 \u4e2d",
             "<s> </s> <0x41>"]
    for i, text in enumerate(texts):
        put("llama2c_tokenizer", f"text_{i}", b"\x00" + text.encode())
    put("llama2c_tokenizer", "text_invalid_utf8", b"\x00ab\xff\xc3(\xe2\x82")
    put("llama2c_tokenizer", "tokenizer_bin", b"\x01" + tok512)
    put("llama2c_tokenizer", "tokenizer_truncated", b"\x01" + tok512[:1001])
    put("llama2c_tokenizer", "tokenizer_negative_length", b"\x01" + struct.pack("<ifi", 8, 0.0, -5))
    put("llama2c_tokenizer", "tokenizer_too_few", b"\x01" + tokenizer_bin([b"a", b"b"], [0.0, 0.0]))


def tokenizer_json_from_bin(tok512):
    pieces, scores = read_tokenizer_bin(tok512)
    names = ["<unk>", "<s>", "</s>"] + [p.decode("utf-8", "replace").replace(" ", "\u2581") for p in pieces[3:]]
    vocab, ids = {}, {}
    for i, name in enumerate(names):
        vocab.setdefault(name, i)
        ids.setdefault(name, i)
    merges = []
    for name in names[259:]:
        for cut in range(1, len(name)):
            left, right = name[:cut], name[cut:]
            if left in ids and right in ids:
                merges.append(f"{left} {right}")
    added = [{"id": i, "content": names[i], "special": True, "normalized": False} for i in range(3)]
    return {
        "version": "1.0", "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": merges},
    }


def seeds_sentencepiece(tok512):
    texts = ["Once upon a time, there was a little girl.", "", "  two  spaces ", "<s>hello</s>",
             "\xe9t\xe9 \U0001F600"]
    for i, text in enumerate(texts):
        put("sentencepiece_bpe", f"text_{i}", bytes([2 * (i % 2)]) + text.encode())
    put("sentencepiece_bpe", "text_invalid_utf8", b"\x00ab\xff\xc3(")
    small = {
        "added_tokens": [{"id": 1, "content": "<s>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        "post_processor": None,
        "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                  "vocab": dict({"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6,
                                 "ab": 7}, **{f"<0x{b:02X}>": 8 + b for b in range(256)}),
                  "merges": ["\u2581 a", "a b"]},
    }
    put("sentencepiece_bpe", "tokenizer_small", b"\x01" + json.dumps(small).encode() + b"\x00 ab ba \xc3\xa9")
    put("sentencepiece_bpe", "tokenizer_pairs", b"\x03" + json.dumps(
        dict(small, model=dict(small["model"], merges=[["\u2581", "a"], ["a", "b"]]))).encode() + b"\x00aab")
    put("sentencepiece_bpe", "tokenizer_bytelevel", b"\x01" + json.dumps(
        dict(small, pre_tokenizer={"type": "ByteLevel"})).encode())
    put("sentencepiece_bpe", "tokenizer_bad_id", b"\x01" + json.dumps(
        dict(small, model=dict(small["model"], vocab={"a": 2147483647}))).encode())
    put("sentencepiece_bpe", "tokenizer_bad_json", b"\x01{\"model\": {\"type\": \"BPE\", ")


# ---- GPT-2 and WordPiece ------------------------------------------------------------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def small_gpt2(vocab_json, merges_txt, merges_kept):
    """GPT-2's 256 byte tokens, its first merges and <|endoftext|>, renumbered."""
    byte_tokens = [bytes_to_unicode()[b] for b in range(256)]
    merges = [line for line in merges_txt.splitlines()[1:] if line][:merges_kept]
    tokens = list(byte_tokens)
    for m in merges:
        left, right = m.split(" ")
        tokens.append(left + right)
    tokens.append("<|endoftext|>")
    vocab = {}
    for t in tokens:
        vocab.setdefault(t, len(vocab))
    assert all(t in json.loads(vocab_json) for t in vocab)
    return json.dumps(vocab, ensure_ascii=False), "#version: 0.2\n" + "\n".join(merges) + "\n"


def seeds_gpt2(vocab, merges):
    texts = ["Hello world, <|endoftext|> caf\xe9!", "", "  multiple   spaces\n\nand lines",
             "I'm can't we've 123 4567", "\U0001F600\u4e2d\u6587 \u0645\u0631\u062d\u0628\u0627"]
    for i, text in enumerate(texts):
        put("gpt2_tokenizer", f"text_{i}", b"\x00" + text.encode())
    put("gpt2_tokenizer", "text_invalid_utf8", b"\x00ab\xff\xc3(\xed\xa0\x80")
    tiny_vocab, tiny_merges = small_gpt2(vocab, merges, 20)
    put("gpt2_tokenizer", "files_tiny", b"\x01" + tiny_vocab.encode() + b"\x00" + tiny_merges.encode()
        + b"\x00the then there")
    put("gpt2_tokenizer", "files_missing_byte", b"\x01" + json.dumps({"a": 0, "b": 1}).encode() + b"\x00\x00ab")
    put("gpt2_tokenizer", "files_bad_merge", b"\x01" + tiny_vocab.encode() + b"\x00x y z\n\x00xyz")
    put("gpt2_tokenizer", "files_bad_ids", b"\x01" + json.dumps({"a": 5, "b": -1}).encode() + b"\x00")


def small_bert(vocab_txt, lines_kept):
    lines = vocab_txt.splitlines()
    kept = lines[:lines_kept]
    # a few whole words and their ## pieces from further down
    extra = [w for w in lines[lines_kept:] if w in ("hello", "world", "##s", "##ing", "un", "##aff", "##able",
                                                  "cafe", "token", "##izer")]
    return "\n".join(kept + extra) + "\n"


def seeds_wordpiece(bert_small):
    texts = ["Hello, [MASK] world! Caf\xe9 \u4e2d\u6587", "", "unaffable tokenizers\t\r\n",
             "[CLS] a [SEP] [PAD] [UNK]", "\u0000\u00ad\u200b control\u0007", "ABC def G\u0301"]
    for i, text in enumerate(texts):
        put("wordpiece_tokenizer", f"text_{i}", bytes([(i % 3) * 2]) + text.encode())
    put("wordpiece_tokenizer", "text_invalid_utf8", b"\x02ab\xff\xc3(")
    vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n!\nun\n##aff\n##able\n"
    put("wordpiece_tokenizer", "vocab_small", b"\x03" + vocab.encode() + b"\x00Hello, worlds! unaffable")
    put("wordpiece_tokenizer", "vocab_no_unk", b"\x01a\nb\n\x00a b")
    put("wordpiece_tokenizer", "vocab_crlf", b"\x05[UNK]\r\n[CLS]\r\n[SEP]\r\nx\r\n\x00x y")
    put("wordpiece_tokenizer", "vocab_invalid_utf8", b"\x01[UNK]\n\xff\xfe\n")


# ---- sweep specs --------------------------------------------------------------------------------

def seeds_sweep():
    specs = {
        "construction_toy": {"name": "toy", "kind": "construction", "model": "toy", "d": [2, 4],
                             "n": {"from": 2, "to": 8, "step": 2}, "radius": 1.5, "samples": 2},
        "regime_toy": {"kind": "regime", "regime": ["construction", "iid"], "model": "toy", "d": 3,
                       "n": {"log_from": 2, "log_to": 64, "count": 5}, "n_star": 10},
        "sweeps_list": {"sweeps": [{"kind": "construction", "model": "toy", "n": [2], "radius": 1},
                                   {"kind": "regime", "regime": "iid", "model": "toy", "n": [4], "radius": 2}]},
        "window_random_gpt2": {"kind": "window", "model": "random:gpt2", "layer": [0, 1], "n": [4, 8],
                               "ids_seed": 3, "block": "attn"},
        "window_toy": {"kind": "window", "model": "toy", "n": 3},
        "unknown_kind": {"kind": "dance", "n": [1]},
        "missing_n": {"kind": "construction", "model": "toy", "radius": 1},
        "huge_grid": {"kind": "construction", "model": "toy", "radius": 1, "n": {"from": 1, "to": 1e300, "step": 1}},
        "tiny_step": {"kind": "construction", "model": "toy", "radius": 1,
                      "n": {"from": 1e16, "to": 1.0000000000000004e16, "step": 1}},
        "huge_samples": {"kind": "construction", "model": "toy", "radius": 1, "n": [2], "samples": 2147483647},
        "huge_log_count": {"kind": "construction", "model": "toy", "radius": 1,
                           "n": {"log_from": 1, "log_to": 10, "count": 1e300}},
        "wrong_types": {"kind": "construction", "model": "toy", "n": ["two"], "radius": "one"},
        "product": {"kind": "construction", "model": "toy", "radius": 1, "n": list(range(1, 1001)),
                    "d": list(range(1, 1001))},
    }
    for name, spec in specs.items():
        put("sweep_spec", name, json.dumps(spec))
    put("sweep_spec", "bad_json", '{"kind": "construction", ')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[2] / ".." / "shared" / "data")
    args = parser.parse_args()
    tok512 = (args.shared / "stories260K" / "tok512.bin").read_bytes()
    gpt2_vocab = (args.shared / "gpt2" / "vocab.json").read_text(encoding="utf-8")
    gpt2_merges = (args.shared / "gpt2" / "merges.txt").read_text(encoding="utf-8")
    bert_vocab = (args.shared / "bert-base-uncased" / "vocab.txt").read_text(encoding="utf-8")

    DATA.mkdir(exist_ok=True)
    (DATA / "tok512.bin").write_bytes(tok512)
    (DATA / "llama-tokenizer.json").write_text(json.dumps(tokenizer_json_from_bin(tok512), ensure_ascii=False),
                                               encoding="utf-8")
    vocab, merges = small_gpt2(gpt2_vocab, gpt2_merges, 2000)
    (DATA / "gpt2-vocab.json").write_text(vocab, encoding="utf-8")
    (DATA / "gpt2-merges.txt").write_text(merges, encoding="utf-8")
    bert_small = small_bert(bert_vocab, 2500)
    (DATA / "bert-vocab.txt").write_text(bert_small, encoding="utf-8")

    seeds_safetensors()
    seeds_layer_file()
    seeds_npy()
    seeds_config()
    seeds_shard_index()
    seeds_llama2c_model()
    seeds_llama2c_tokenizer(tok512)
    seeds_sentencepiece(tok512)
    seeds_gpt2(gpt2_vocab, gpt2_merges)
    seeds_wordpiece(bert_small)
    seeds_sweep()


if __name__ == "__main__":
    main()
