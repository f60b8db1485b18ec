"""Run by an interpreter that has only torch, transformers and sentence-transformers: load an encoder export
and a decoder export the ways their users do, and save what they compute.

    python load_without_prunesearch.py ENCODER_DIR DECODER_DIR INPUTS.json OUT.pt
"""

import importlib.util
import json
import sys

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer


def main(encoder: str, decoder: str, inputs: str, out: str) -> None:
    if importlib.util.find_spec("prunesearch") is not None:
        raise SystemExit("prunesearch is importable here: this check must run without it")
    with open(inputs) as f:
        given = json.load(f)
    texts, ids = given["texts"], torch.tensor([given["ids"]])
    try:  # without trust_remote_code, transformers says what to pass (rather than failing on a shape)
        AutoModel.from_pretrained(encoder)
        refused = ""
    except ValueError as exc:
        refused = str(exc)
    st = SentenceTransformer(encoder, trust_remote_code=True, device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(encoder, trust_remote_code=True)
    model = AutoModel.from_pretrained(encoder, trust_remote_code=True).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    lm = AutoModelForCausalLM.from_pretrained(decoder, trust_remote_code=True).eval()
    with torch.no_grad():
        result = {
            "st_embeddings": st.encode(texts, convert_to_tensor=True),
            "hidden": model(**batch).last_hidden_state,
            "attention_mask": batch["attention_mask"],
            "logits": lm(ids).logits,
            "generated": lm.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0),
            "refused": refused,
            "classes": [type(st[0].auto_model).__name__, type(model).__name__, type(lm).__name__],
        }
    torch.save(result, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
