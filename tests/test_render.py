"""``nerelproc render``: the layout rules, and the page itself in headless Chromium.

The browser tests render a few NEREL test documents against "predictions" made from
them without a model (some entities dropped, some retyped, labels changed), open the
page in Debian's chromium through selenium and chromedriver, and check the rendered DOM
against the input. Without chromium they skip, unless CI is set: then they fail.
"""

import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import replace

import pytest
from click.testing import CliRunner

from nerelproc.cli import main
from nerelproc.io.document import Document, Entity
from nerelproc.io.readers import read_documents
from nerelproc.analysis.render import Mark, layout, render_page
from nerelproc.io.schema import entity_types
from nerelproc.io.writers import write_jsonl

CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
)


# ------------------------------------------------------------------- the layout, no browser


def nodes(node):
    for child in node.children:
        yield child
        yield from nodes(child)


def test_layout_nests_and_cuts_crossing_entities_at_the_parent_end():
    text = "abcdefghijklmnop"
    outer, inner, crossing = Mark("1", "ORG", ((0, 8),)), Mark("2", "CITY", ((2, 5),)), Mark("3", "AGE", ((6, 12),))
    root = layout(text, [crossing, inner, outer])
    assert [(n.mark.id, n.start, n.end) for n in root.children] == [("1", 0, 8), ("3", 8, 12)]
    assert [(n.mark.id, n.start, n.end) for n in root.children[0].children] == [("2", 2, 5), ("3", 6, 8)]
    head, tail = root.children[0].children[1], root.children[1]
    assert (head.first, head.last, tail.first, tail.last) == (True, False, False, True)
    assert root.children[0].height == 1 and tail.height == 0


def test_layout_identical_ranges_nest_in_type_order_and_discontinuous_fragments_share_a_mark():
    text = "Жолт Хорняк и Бананц"
    person, profession = Mark("1", "PERSON", ((0, 11),)), Mark("2", "AGE", ((0, 11),))
    split = Mark("3", "ORGANIZATION", ((0, 4), (14, 20)))
    root = layout(text, [person, profession, split])
    assert [n.mark.id for n in nodes(root)] == ["2", "1", "3", "3"]
    assert all(text[n.start : n.end] == "".join(p if isinstance(p, str) else text[p.start : p.end] for p in n.pieces)
               for n in nodes(root))


def test_page_escapes_text_and_keeps_carriage_returns():
    text = 'A <script>alert("x")</script> & \'q\'\r\nB'
    page = render_page([(Document("<id>", text, [Entity("PERSON", ((37, 38),))]), None)])
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp;" in page
    assert "&#39;q&#39;&#13;\n<span" in page and 'data-doc-id="&lt;id&gt;"' in page
    assert not re.search(r'(?:src|href)="(?!#|data:)', page), "the page must not load anything"


# ---------------------------------------------------------------- inputs for the browser test


def make_prediction(gold, seed):
    """A deterministic imperfect prediction: drop every 4th entity, retype every 5th, change labels."""
    types = entity_types()
    entities = []
    for i, entity in enumerate(gold.entities):
        if (i + seed) % 4 == 1:
            continue
        if (i + seed) % 5 == 2:
            entity = replace(entity, type=types[(types.index(entity.type) + 1) % len(types)])
        entities.append(entity)
    labels = gold.relation_labels()
    labels = sorted(set(labels[1:]) | {"SPOUSE"})
    scores = {label: (0.9 if label in labels else 0.1) for label in ("SPOUSE", *gold.relation_labels())}
    return Document(gold.id, gold.text, entities, relation_types=labels, extra={"relation_scores": scores})


def crossing(document):
    spans = [span for entity in document.entities for span in entity.spans]
    return any(a[0] < b[0] < a[1] < b[1] for a in spans for b in spans)


def pick_documents(test_path, count=5):
    """The first documents of NEREL test, with one discontinuous and one crossing entity among them."""
    documents = list(read_documents(test_path))
    chosen = [next(d for d in documents if any(len(e.spans) > 1 for e in d.entities)),
              next(d for d in documents if crossing(d))]
    for document in documents:
        if len(chosen) == count:
            break
        if all(document.id != other.id for other in chosen):
            chosen.append(document)
    return chosen


def synthetic_gold():
    """Markup characters, a CR, crossing and identical spans, and a discontinuous entity."""
    text = 'Жолт <Хорняк> & "Бананц"\r\n(Ереван)'
    entities = [Entity("PERSON", ((0, 13),), "T1"), Entity("ORGANIZATION", ((6, 12),), "T2"),
                Entity("AGE", ((6, 12),), "T3"), Entity("CITY", ((10, 24),), "T4"),
                Entity("EVENT", ((0, 4), (17, 23)), "T5"), Entity("COUNTRY", ((27, 33),), "T6")]
    return Document("synthetic<&>", text, entities, relation_types=["WORKPLACE"])


def expected_marks(pred, gold):
    """(type, merged spans, verdict) of every element group the page must show, as a Counter."""
    gold_keys = {e.key for e in gold.entities}
    pred_keys = {e.key for e in pred.entities}
    marks = [(e.type, merge(e.spans), "tp" if e.key in gold_keys else "fp") for e in pred.entities]
    marks += [(kind, merge(spans), "fn") for kind, spans in sorted(gold_keys - pred_keys)]
    return Counter(marks)


def merge(spans):
    """Sorted spans with touching ones joined (a crossing entity is drawn in touching pieces)."""
    merged = []
    for start, end in sorted(spans):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


# ------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        binary = None
    if not (binary and driver_path):
        message = ("headless browser test needs Debian's chromium and chromium-driver "
                   "(apt-get install chromium chromium-driver) and selenium")
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI the browser test must run
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="nerelproc-chromium-")
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # no Selenium Manager download
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def rendered(nerel_dir, tmp_path_factory):
    """Predictions and gold as JSONL, and the page ``nerelproc render --gold`` made of them."""
    root = tmp_path_factory.mktemp("render")
    golds = [synthetic_gold(), *pick_documents(nerel_dir / "jsonl" / "test.jsonl")]
    preds = [make_prediction(gold, seed) for seed, gold in enumerate(golds)]
    write_jsonl(preds, root / "pred.jsonl")
    write_jsonl(golds, root / "gold.jsonl")
    page = root / "review.html"
    result = CliRunner().invoke(main, ["render", str(root / "pred.jsonl"), "--gold", str(root / "gold.jsonl"),
                                       "-o", str(page)])
    assert result.exit_code == 0, result.output
    return preds, golds, page


DOM_SCRIPT = """
return Array.from(document.querySelectorAll('article.doc')).map(doc => {
  const text = doc.querySelector('.text');
  const elements = Array.from(text.querySelectorAll('.ent'));
  return {id: doc.dataset.docId, text: text.textContent, elements: elements.map(el => {
    const ancestors = [];
    for (let up = el.parentElement.closest('.ent'); up; up = up.parentElement.closest('.ent'))
      ancestors.push(elements.indexOf(up));
    const style = getComputedStyle(el);
    return {entity: el.dataset.entity, type: el.dataset.type, verdict: el.dataset.verdict || null,
            start: Number(el.dataset.start), end: Number(el.dataset.end), text: el.textContent,
            ancestors: ancestors, border: style.borderBottomStyle,
            label: getComputedStyle(el, '::after').content, visible: el.getClientRects().length > 0};
  })};
});
"""


def dom(driver):
    return {doc["id"]: doc for doc in driver.execute_script(DOM_SCRIPT)}


def test_page_in_headless_chromium(browser, rendered):
    preds, golds, page = rendered
    browser.get(page.as_uri())
    pages = dom(browser)
    nested_pairs = split_entities = 0
    assert list(pages) == [str(p.id) for p in preds]
    for pred, gold in zip(preds, golds):
        doc = pages[str(pred.id)]
        elements = doc["elements"]
        assert doc["text"] == pred.text  # nothing added to the text, CR kept
        # one distinct data-entity per predicted entity, plus one per missed gold entity
        groups = {}
        for element in elements:
            assert element["text"] == pred.text[element["start"] : element["end"]], element
            groups.setdefault(element["entity"], []).append(element)
        drawn = Counter((g[0]["type"], merge([(e["start"], e["end"]) for e in g]), g[0]["verdict"])
                        for g in groups.values())
        assert drawn == expected_marks(pred, gold), pred.id
        assert len(groups) == len(pred.entities) + sum(v == "fn" for _, _, v in drawn.elements())
        assert all(len({(e["type"], e["verdict"]) for e in g}) == 1 for g in groups.values())
        split_entities += sum(len(g) > 1 for g in groups.values())
        # elements that overlap are nested in the DOM, the inner one inside the outer's range
        for i, a in enumerate(elements):
            for j, b in enumerate(elements[:i]):
                if a["start"] < b["end"] and b["start"] < a["end"]:
                    inner, outer = (a, b) if j in a["ancestors"] else (b, a)
                    assert elements.index(outer) in inner["ancestors"], (a, b)
                    assert outer["start"] <= inner["start"] and inner["end"] <= outer["end"]
        # a nested input entity is drawn inside its parent's element
        ids = {}
        for entity_id, group in groups.items():
            ids.setdefault((group[0]["type"], merge([(e["start"], e["end"]) for e in group])), []).append(entity_id)
        continuous = [key for key in ids if len(key[1]) == 1]
        for parent in continuous:
            for child in continuous:
                (ps, pe), (cs, ce) = parent[1][0], child[1][0]
                if ps <= cs and ce <= pe and (ps, pe) != (cs, ce):
                    nested_pairs += 1
                    parents = {k for k, e in enumerate(elements) if e["entity"] in ids[parent]}
                    for element in elements:
                        if element["entity"] in ids[child]:
                            assert parents & set(element["ancestors"]), (parent, child)
    assert nested_pairs > 0
    assert split_entities > 0  # discontinuous or crossing entities, drawn as several elements

    logs = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert logs == [], logs
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_filters_and_the_sortable_document_list(browser, rendered):
    from selenium.webdriver.common.by import By

    _, _, page = rendered
    browser.get(page.as_uri())
    before = dom(browser)
    assert all(e["border"] != "none" and e["visible"] for d in before.values() for e in d["elements"])

    browser.find_element(By.CSS_SELECTOR, 'input[data-filter="type"][value="PERSON"]').click()
    after = dom(browser)
    people = [e for d in after.values() for e in d["elements"] if e["type"] == "PERSON"]
    others = [e for d in after.values() for e in d["elements"] if e["type"] != "PERSON"]
    assert people and others
    assert all(e["border"] == "none" and e["label"] == "none" for e in people)
    assert all(e["border"] != "none" for e in others)
    assert all(after[i]["text"] == before[i]["text"] for i in before)  # the text stays

    browser.find_element(By.CSS_SELECTOR, 'button[data-all="type"]').click()
    browser.find_element(By.CSS_SELECTOR, 'input[data-filter="verdict"][value="tp"]').click()
    after = dom(browser)
    assert all((e["border"] == "none") == (e["verdict"] == "tp") for d in after.values() for e in d["elements"])
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('.chip[data-verdict=tp]')).every(c => !c.getClientRects().length)")

    # one click on "NER F1" puts the worst document first, a second click the best
    header = browser.find_element(By.CSS_SELECTOR, 'th[data-sort="ner"]')
    scores = "return Array.from(document.querySelectorAll('#doc-table tbody tr')).map(r => Number(r.dataset.ner))"
    header.click()
    assert browser.execute_script(scores) == sorted(browser.execute_script(scores))
    header.click()
    assert browser.execute_script(scores) == sorted(browser.execute_script(scores), reverse=True)
    logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs
