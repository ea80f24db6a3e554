"""Makes the encoder models and references that internal/encoder tests compare against.

    gen_encoder_reference.py tiny <minilm-dir> <out-dir>
        Writes two tiny random BERT sentence-transformers directories beside
        each other under <out-dir>: tiny-bge (CLS pooling, L2 normalisation,
        a retrieval instruction as the "query" prompt, weights stored with a
        "bert." prefix) and tiny-e5 (mean pooling, L2 normalisation,
        "query: " / "passage: " prompts, max_seq_length 64). Both reuse
        MiniLM's real tokenizer.json, so their vocabulary is the BERT one.

    gen_encoder_reference.py reference <encoders-dir> <out-dir> <model>...
        Writes <out-dir>/texts.json (about 200 varied texts) and, per model,
        <out-dir>/<model>.json with the Hugging Face tokenizer ids of every
        text (untruncated, with [CLS]/[SEP]), the ids sentence-transformers
        feeds the model (truncated to max_seq_length), and the
        sentence-transformers embeddings: plain (no prompt), query and
        passage (with the prompts the directory lists; see
        directory_prefixes).

Runs on the CPU in the venv of scripts/fetch_peft.sh with sentence-transformers
added by scripts/fetch_encoders.sh.
"""

import json
import os
import sys


def texts():
    """About 200 texts covering what a BERT tokenizer treats specially."""
    base = [
        "",
        "a",
        "Hello, world!",
        "What is the capital of France?",
        "The Eiffel Tower is located in Paris, the capital of France.",
        "UPPER CASE and MiXeD cAsE words",
        "Numbers: 3.14159, 2,718, 1e-10, 42nd, 0x1F, 007",
        "Phone +1 (555) 123-4567; zip 90210.",
        "Accents: café, naïve, résumé, Müller, über, Ångström, São Paulo, Dvořák",
        "Straße, Œuvre, Æsir, ﬁne ligature, ½ cup, ² squared",
        "中文测试：北京是中国的首都。",
        "日本語のテキスト：東京タワーは高い。カタカナとひらがな。",
        "한국어 문장도 있습니다.",
        "Русский текст: Москва — столица России.",
        "Ελληνικά: Αθήνα είναι η πρωτεύουσα.",
        "العربية: القاهرة عاصمة مصر",
        "Emoji 😀🎉👍🏽 and symbols ★ ☃ ♥ → ∑ ∞ ≠",
        "Family emoji 👨‍👩‍👧‍👦 with zero-width joiners",
        "   leading and trailing spaces   ",
        "tabs\tbetween\twords\nand\nnewlines\r\nand carriage returns",
        "multiple     spaces      between words",
        "non\u00a0breaking\u00a0spaces and\u2003em spaces",
        "zero\u200bwidth\u200bspace and soft\u00adhyphen",
        "control\x00chars\x01here\x7f and \ufffd replacement",
        "https://example.com/path/to/page?query=1&lang=en#section",
        "Email me at someone.name+tag@example.co.uk please",
        "C:\\Program Files\\App\\bin\\app.exe --flag=value",
        "def f(x): return x**2 + 3*x - 1  # python code",
        "if (a && b || !c) { return a[i] >> 2; }",
        "Quotes: \"double\", 'single', «guillemets», „low“, ‘curly’",
        "Dashes: en–dash, em—dash, minus − sign, hyphen-ated",
        "Ellipsis… and !!! ??? ?!?! ... ,,, ;;; :::",
        "$100, €50, £30, ¥1000, ₹200, 15%, #hashtag, @mention",
        "don't can't won't it's they're I'd we'll",
        "state-of-the-art well-known e-mail co-operate",
        "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
        "supercalifragilisticexpialidocious" * 4,
        "x" * 99,
        "y" * 100,
        "z" * 101,
        "word " + "q" * 150 + " word",
        "ALLCAPSWORDWITHOUTSPACESTHATISVERYLONG",
        "MiniLM, BERT, GPT-4, LLaMA-2-7B, T5-XXL, ResNet50",
        "1234567890123456789012345678901234567890",
        "3:45pm on 2024-03-15T12:34:56Z (UTC+02:00)",
        "H₂O, CO₂, E=mc², x₁+x₂, α β γ δ",
        "Mixed 中文 and English words 混合",
        "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ ａｎｄ １２３",
        "ｶﾀｶﾅ half-width katakana",
        "Thai: ภาษาไทย Hindi: हिन्दी Hebrew: עברית",
        "Combining: e\u0301 a\u0308 n\u0303 (decomposed accents)",
        "[CLS] [SEP] [PAD] [MASK] [UNK] literal special tokens",
        "<html><body><p>Some HTML &amp; entities &lt;tag&gt;</p></body></html>",
        "**bold** _italic_ `code` ~~strike~~ > quote",
        "a.b.c.d e,f,g h;i;j k:l:m",
        "one\n\ntwo\n\n\nthree",
        "The quick brown fox jumps over the lazy dog.",
        "Who wrote the novel Pride and Prejudice?",
        "How many moons does Jupiter have?",
        "Photosynthesis converts light energy into chemical energy in plants.",
    ]
    topics = [
        "the history of the Roman Empire",
        "quantum entanglement experiments",
        "how vaccines train the immune system",
        "the migration of monarch butterflies",
        "sourdough bread fermentation",
        "the architecture of Gothic cathedrals",
        "black holes and event horizons",
        "the rules of cricket",
        "jazz improvisation in the 1950s",
        "plate tectonics and earthquakes",
        "the French Revolution of 1789",
        "machine translation with neural networks",
        "coral reef bleaching",
        "the Apollo 11 moon landing",
        "medieval trade routes across Asia",
    ]
    words = ("the of and to in is was for on that with as by at from his her "
             "which are this be or an had not but were they have one their "
             "all has been more when who will would there she if its out so "
             "up what about into than them can only other new some time "
             "could these two may then do first any my now such like our over "
             "man me even most made after also did many before must through "
             "years where much your way well down should because each just "
             "those people how too little state good very make world still "
             "own see men work long get here between both life being under "
             "never day same another know while last might us great old year").split()
    out = list(base)
    # Questions and passages about varied topics, short and long.
    for i, topic in enumerate(topics):
        out.append(f"What do we know about {topic}?")
        out.append(f"Tell me about {topic}.")
        out.append(f"{topic.capitalize()} is a subject studied by many researchers since {1800 + 13 * i}.")
    # Pseudo-random word salad of many lengths, some far beyond 256 tokens.
    state = 12345
    def rand():
        nonlocal state
        state = (state * 1103515245 + 12345) % (1 << 31)
        return state
    lengths = [3, 8, 15, 30, 50, 80, 120, 200, 300, 400]
    decorations = ["", ",", ".", "!", "?", " é", " 中", " 42", " Über", " 😀"]
    while len(out) < 200:
        n = lengths[len(out) % len(lengths)]
        parts = []
        for j in range(n):
            w = words[rand() % len(words)]
            if rand() % 7 == 0:
                w = w.capitalize()
            if rand() % 11 == 0:
                w += decorations[rand() % len(decorations)]
            parts.append(w)
        out.append(" ".join(parts))
    return out


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.replace(tmp, path)


def make_tiny(minilm, out):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    specs = {
        "tiny-bge": dict(pooling="cls", max_seq_length=128, seed=1, prefix="bert.",
                         prompts={"query": "Represent this sentence for searching relevant passages: "}),
        "tiny-e5": dict(pooling="mean", max_seq_length=64, seed=2, prefix="",
                        prompts={"query": "query: ", "passage": "passage: "}),
    }
    for name, spec in specs.items():
        torch.manual_seed(spec["seed"])
        config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=512, type_vocab_size=2,
                            hidden_act="gelu", layer_norm_eps=1e-12)
        bert = BertModel(config, add_pooling_layer=False).eval()
        # Random weights everywhere, LayerNorm scales and biases included, so
        # that a parity check sees every parameter.
        with torch.no_grad():
            for p in bert.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        tmp = os.path.join(out, name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        hf = os.path.join(tmp, "hf")
        bert.save_pretrained(hf)
        shutil.copy(os.path.join(minilm, "tokenizer.json"), hf)
        for f in ("tokenizer_config.json", "special_tokens_map.json"):
            if os.path.exists(os.path.join(minilm, f)):
                shutil.copy(os.path.join(minilm, f), hf)
        transformer = Transformer(hf, max_seq_length=spec["max_seq_length"])
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=spec["pooling"])
        st = SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=spec["prompts"])
        final = os.path.join(tmp, "st")
        st.save(final)
        # sentence-transformers 6 adds an empty "document" prompt on save,
        # which encode_document would pick before "passage"; the published
        # BGE and E5 directories list only the prompts of their model cards.
        cfg_path = os.path.join(final, "config_sentence_transformers.json")
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["prompts"] = spec["prompts"]
        write_json(cfg_path, cfg)
        if spec["prefix"]:
            # Store the weights the way BertFor* checkpoints name them, and
            # check that sentence-transformers still loads the same model.
            path = os.path.join(final, "model.safetensors")
            weights = load_file(path)
            save_file({spec["prefix"] + k: v for k, v in weights.items()}, path, metadata={"format": "pt"})
        reloaded = SentenceTransformer(final, device="cpu")
        probe = ["a probe sentence for the reload check", "中文 é"]
        a = st.encode(probe, convert_to_tensor=True)
        b = reloaded.encode(probe, convert_to_tensor=True)
        if not torch.allclose(a, b, atol=1e-6):
            sys.exit(f"{name}: reloaded model differs from the saved one (weights not loaded?)")
        dst = os.path.join(out, name)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(final, dst)
        shutil.rmtree(tmp)
        print("wrote", dst)


def directory_prefixes(model_dir):
    """The query and passage prompts that the directory's
    config_sentence_transformers.json lists: "query", and the first of
    "document", "passage", "corpus"; each falls back to the default prompt.

    encode_query/encode_document of sentence-transformers 6 differ for
    E5-style directories: the library adds empty "query" and "document"
    prompts to every model, and the empty "document" shadows E5's
    "passage: ". The prefixes here are the ones the model card prescribes.
    """
    path = os.path.join(model_dir, "config_sentence_transformers.json")
    cfg = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    prompts = cfg.get("prompts") or {}
    fallback = prompts.get(cfg.get("default_prompt_name") or "", "")
    query = prompts.get("query", fallback)
    passage = next((prompts[n] for n in ("document", "passage", "corpus") if n in prompts), fallback)
    return query, passage


def make_reference(encoders, out, models):
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    torch.set_num_threads(2)
    all_texts = texts()
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "texts.json"), {"texts": all_texts})
    for name in models:
        d = os.path.join(encoders, name)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        ids = [e.ids for e in tok.encode_batch(all_texts)]
        st = SentenceTransformer(d, device="cpu")
        features = st.tokenize(all_texts)
        truncated = [list(map(int, row[m.bool()]))
                     for row, m in zip(features["input_ids"], features["attention_mask"])]
        query, passage = directory_prefixes(d)
        emb = {
            "plain": st.encode(all_texts, prompt="", batch_size=16).tolist(),
            "query": st.encode(all_texts, prompt=query, batch_size=16).tolist(),
            "passage": st.encode(all_texts, prompt=passage, batch_size=16).tolist(),
        }
        write_json(os.path.join(out, name + ".json"), {
            "model": name,
            "max_seq_length": st.max_seq_length,
            "prompts": st.prompts,
            "query_prefix": query,
            "passage_prefix": passage,
            "token_ids": ids,
            "model_input_ids": truncated,
            "embeddings": emb,
        })
        print("wrote", os.path.join(out, name + ".json"))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "tiny":
        make_tiny(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "reference":
        make_reference(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
