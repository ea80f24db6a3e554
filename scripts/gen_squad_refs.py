#!/usr/bin/env python3
"""Writes internal/score/testdata/squad_golden.jsonl: predictions, gold aliases
and the EM / F1 / SubEM that SQuAD v1.1's official evaluation functions give
(re-implemented here from their published definition, standard library only).
The Go tests compare against this file; run this script to regenerate it."""
import collections, json, os, re, string

def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text):
        return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)
    return white_space_fix(remove_articles(remove_punc(s.lower())))

def f1_score(prediction, ground_truth):
    p = normalize_answer(prediction).split()
    g = normalize_answer(ground_truth).split()
    common = collections.Counter(p) & collections.Counter(g)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(p)
    recall = num_same / len(g)
    return 2 * precision * recall / (precision + recall)

def em(prediction, golds):
    return int(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))

def subem(prediction, golds):
    p = normalize_answer(prediction)
    return int(any(normalize_answer(g) != '' and normalize_answer(g) in p for g in golds))

CASES = [
    ("The Eiffel Tower", ["Eiffel Tower"]),
    ("eiffel tower!", ["The Eiffel Tower"]),
    ("A tale of two cities", ["Tale of Two Cities"]),
    ("an apple a day", ["apple day"]),
    ("Theatre", ["the atre"]),
    ("the the the", [""]),
    ("", ["anything"]),
    ("anything", []),
    ("Paris, France", ["Paris"]),
    ("It was in Paris, France.", ["Paris", "Lyon"]),
    ("1,000", ["1000"]),
    ("U.S.A.", ["USA"]),
    ("  lots   of\tspace\n", ["lots of space"]),
    ("São Paulo", ["sao paulo", "São Paulo"]),
    ("“Quoted” — dash", ["Quoted dash"]),
    ("ΟΔΟΣ", ["οδος", "οδoς"]),
    ("İstanbul", ["istanbul"]),
    ("the_a an_the", ["_a an_"]),
    ("a1 the2 an", ["1 2"]),
    ("abc abc abc", ["abc"]),
    ("abc", ["abc abc abc"]),
    ("red green blue", ["green red", "blue"]),
    ("日本の首都は東京", ["東京"]),
    ("l'amour", ["lamour"]),
    ("x\x1cy", ["x y"]),
    ("Nobel Prize in Physics (1921)", ["Nobel Prize in Physics"]),
    ("A", ["a"]),
    ("an", ["the"]),
    ("The Beatles' song", ["beatles song"]),
    ("ﬁsh", ["fish"]),
    ("Zürich\u00a0city", ["zürich city"]),
    ("théâtre an", ["théâtre"]),
]

out = os.path.join(os.path.dirname(__file__), '..', 'internal', 'score', 'testdata', 'squad_golden.jsonl')
with open(out, 'w', encoding='utf-8') as f:
    for pred, golds in CASES:
        row = {
            "prediction": pred, "golden_answers": golds,
            "normalized": normalize_answer(pred),
            "em": em(pred, golds),
            "f1": max([f1_score(pred, g) for g in golds], default=0.0),
            "subem": subem(pred, golds),
        }
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print("wrote", out)
