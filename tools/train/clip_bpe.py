"""CLIP byte-level BPE encoder reading a CLIP-format tokenizer folder (vocab.json + merges.txt).

Follows OpenAI CLIP's scheme: whitespace collapsed and lower-cased text, pre-tokenised by CLIP's regex
(special tokens, English contractions, runs of letters, single digits, runs of other non-space characters),
each piece mapped to byte-level unicode, merged by rank, the last symbol of each word carrying `</w>`.
SD1 framing: <|startoftext|> ids <|endoftext|>, truncated to 77 and padded with <|endoftext|>.

Python's `re` has no \\p{L}; letters are matched as [^\\W\\d_] (word characters that are neither digits nor
underscore), which equals \\p{L} for every character our captions use.
"""
import json
import os
import re

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
                 re.IGNORECASE)


def byte_to_unicode():
    """The reversible byte -> printable character table used by GPT-2/CLIP byte-level BPE."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class ClipTokenizer:
    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        ranks = {}
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#version"):
                    continue
                a, b = line.split(" ")
                ranks[(a, b)] = len(ranks)
        self.ranks = ranks
        self.bytes = byte_to_unicode()
        self.bos = self.vocab[BOS]
        self.eos = self.vocab[EOS]
        self.cache = {}

    def _bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            best = None
            for i in range(len(word) - 1):
                r = self.ranks.get((word[i], word[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = word[best[1]], word[best[1] + 1]
            merged = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    def tokenize(self, text):
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for m in PAT.finditer(text):
            piece = m.group(0)
            if piece in (BOS, EOS):
                ids.append(self.vocab[piece])
                continue
            u = "".join(self.bytes[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[t] for t in self._bpe(u))
        return ids

    def encode(self, text, length=77):
        ids = [self.bos] + self.tokenize(text)[: length - 2] + [self.eos]
        return ids + [self.eos] * (length - len(ids))

    def __len__(self):
        return len(self.vocab)
