"""displaCy's span view of one NEREL test text annotated by the ``nerelproc`` spaCy component,
written as an HTML page and screenshotted with Debian's headless chromium: the picture in
docs/spacy.md (reports/render/displacy.png).

    python benchmarks/spacy_displacy.py --id 197647_text
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import spacy
from spacy import displacy

from nerelproc.integrations.spacy import displacy_colors

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--id", default="197647_text", help="the NEREL test document to show")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "render" / "displacy.png"))
    parser.add_argument("--size", default="1200,560", help="chromium's window, WIDTH,HEIGHT")
    args = parser.parse_args()

    documents = {d["id"]: d for d in map(orjson.loads, Path(args.data).read_bytes().splitlines())}
    nlp = spacy.blank("ru")
    nlp.add_pipe("nerelproc", config={"threads": 1})
    doc = nlp(documents[args.id]["text"])
    html = displacy.render(doc, style="span", page=True, options={"spans_key": "nerel", "colors": displacy_colors()})

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("spacy_displacy: needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="nerelproc-displacy-") as folder:
        page = Path(folder) / "displacy.html"
        page.write_text(html, "utf-8")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([chromium, *CHROMIUM_ARGS, f"--user-data-dir={folder}/profile",
                        f"--screenshot={Path(args.out).resolve()}", f"--window-size={args.size}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {args.out}: document {args.id}, {len(doc.spans['nerel'])} spans", file=sys.stderr)


if __name__ == "__main__":
    main()
