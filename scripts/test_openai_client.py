#!/usr/bin/env python3
"""Checks `ssp serve` with OpenAI's own Python client (the `openai` package).

Run against a running server, with the base URL of its API:

    scripts/test_openai_client.py --base-url http://127.0.0.1:8080/v1 [--api-key KEY]

It lists the models, asks the plain model for a completion with and without
streaming (the same seed must give the same text), asks the agent a
question with and without streaming (the same answer, trajectory and
searches), and checks that the client raises OpenAI's error types for a bad
request, an unknown model and, with --api-key, a wrong key. It prints a JSON
summary on the last line and exits 1 on the first failed check.
"""
import argparse
import json
import sys

import openai
from openai import OpenAI


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--question", default="In which city was Fedi Lisegi born?")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key or "none", max_retries=0, timeout=120)
    agent = args.model + "-agent"

    ids = [m.id for m in client.models.list()]
    check(args.model in ids and agent in ids, f"models {ids} lack {args.model} and {agent}")

    # Plain chat: the same seed streamed and not.
    plain = dict(model=args.model, messages=[{"role": "user", "content": "Name a city."}],
                 max_tokens=16, temperature=1, seed=11, extra_body={"ignore_eos": True})
    r = client.chat.completions.create(**plain)
    text = r.choices[0].message.content
    check(isinstance(text, str) and text != "", f"plain completion {r}")
    check(r.usage.completion_tokens == 16 and r.choices[0].finish_reason == "length", f"usage {r.usage}, finish {r.choices[0].finish_reason}")
    streamed, finish, usage = [], None, None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **plain):
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object}")
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                streamed.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("".join(streamed) == text, f"streamed {''.join(streamed)!r}, not streamed {text!r}")
    check(finish == "length" and usage is not None and usage.completion_tokens == 16, f"stream finish {finish}, usage {usage}")

    # The agent: answer, trajectory and searches, streamed and not.
    question = [{"role": "user", "content": args.question}]
    a = client.chat.completions.create(model=agent, messages=question)
    body = a.to_dict()
    ssp = body.get("ssp") or {}
    check("trajectory" in ssp and "searches" in ssp, f"agent answer without its ssp fields: {body}")
    check(body["choices"][0]["message"].get("reasoning_content") == ssp["trajectory"], "reasoning_content is not the trajectory")
    answer = a.choices[0].message.content
    reasoning, searches, streamed_answer, final = [], [], None, None
    for chunk in client.chat.completions.create(model=agent, messages=question, stream=True):
        d = chunk.to_dict()
        for c in d["choices"]:
            reasoning.append(c["delta"].get("reasoning_content", ""))
            if c.get("finish_reason"):
                streamed_answer, final = c["delta"].get("content"), d.get("ssp")
        if d.get("ssp", {}).get("search"):
            searches.append(d["ssp"]["search"]["query"])
    check(streamed_answer == answer, f"streamed answer {streamed_answer!r}, not streamed {answer!r}")
    check("".join(reasoning) == ssp["trajectory"] == (final or {}).get("trajectory"), "streamed trajectory differs")
    check(searches == [s["query"] for s in ssp["searches"]], f"streamed searches {searches}, not streamed {ssp['searches']}")

    # Errors arrive as the client's exception types.
    try:
        client.chat.completions.create(model=args.model, messages=question, temperature=5)
        check(False, "temperature 5 accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "temperature" in str(e), f"bad request error {e}")
    try:
        client.chat.completions.create(model="no-such-model", messages=question)
        check(False, "unknown model accepted")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"unknown model error {e}")
    if args.api_key:
        wrong = OpenAI(base_url=args.base_url, api_key="wrong-" + args.api_key, max_retries=0)
        try:
            wrong.models.list()
            check(False, "wrong API key accepted")
        except openai.AuthenticationError as e:
            check(e.status_code == 401, f"auth error {e}")

    print(json.dumps({"openai": openai.__version__, "plain": text, "answer": answer,
                      "searches": len(ssp["searches"]), "finish": a.choices[0].finish_reason}))


if __name__ == "__main__":
    main()
