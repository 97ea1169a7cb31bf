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
    """A deterministic imperfect prediction: drop every 4th entity, retype every 5th, change labels,
    and perturb the relations (``make_relations``)."""
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
    relations = make_relations(gold, entities, seed)
    probabilities = {line.split("\t")[0]: 0.5 + i % 5 / 10 for i, line in enumerate(relations)}
    return Document(gold.id, gold.text, entities, relations, relation_types=labels,
                    extra={"relation_scores": scores, "relation_probabilities": probabilities})


def make_relations(gold, entities, seed):
    """Gold R-lines whose arguments are still predicted, every 3rd with its arguments swapped and
    every 7th relabelled, one repeated, and one naming another R-line (not an entity)."""
    kept = {entity.id for entity in entities}
    lines = []
    for i, line in enumerate(gold.relations):
        number, body = line.split("\t")[:2]
        label, head, tail = (part.split(":")[-1] for part in body.split())
        if head not in kept or tail not in kept:
            continue
        if (i + seed) % 3 == 0:
            head, tail = tail, head
        if (i + seed) % 7 == 3:
            label = "SPOUSE" if label != "SPOUSE" else "WORKPLACE"
        lines.append(f"{number}\t{label} Arg1:{head} Arg2:{tail}")
    if lines:
        lines.append("R900" + lines[0][lines[0].index("\t"):])
    return [*lines, "R901\tWORKPLACE Arg1:R1 Arg2:T1"]


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
    relations = ["R1\tWORKPLACE Arg1:T1 Arg2:T2", "R2\tLOCATED_IN Arg1:T4 Arg2:T6", "R3\tWORKPLACE Arg1:T1 Arg2:T4",
                 "R4\tWORKPLACE Arg1:T1 Arg2:E9"]  # E9: not an entity, neither shown nor missed
    return Document("synthetic<&>", text, entities, relations, relation_types=["WORKPLACE"])


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
    tp_chips = "Array.from(document.querySelectorAll('.chip[data-verdict=tp]'))"
    assert browser.execute_script(f"return {tp_chips}.length") > 0  # else every() below holds for no chip
    assert browser.execute_script(f"return {tp_chips}.every(c => !c.getClientRects().length)")

    # one click on "NER F1" puts the worst document first, a second click the best
    header = browser.find_element(By.CSS_SELECTOR, 'th[data-sort="ner"]')
    scores = "return Array.from(document.querySelectorAll('#doc-table tbody tr')).map(r => Number(r.dataset.ner))"
    header.click()
    assert browser.execute_script(scores) == sorted(browser.execute_script(scores))
    header.click()
    assert browser.execute_script(scores) == sorted(browser.execute_script(scores), reverse=True)
    logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs


# ---------------------------------------------------------------------------- relation rows


def relation_key_sets(document):
    """(label, (head type, sorted spans), (tail type, sorted spans)) of the R-lines whose
    arguments are T-lines of the document, and the number of the others."""
    by_id = {entity.id: (entity.type, tuple(sorted(entity.spans))) for entity in document.entities}
    keys, others = set(), 0
    for line in document.relations:
        label, *arguments = line.split("\t")[1].split()
        ids = [argument.split(":", 1)[1] for argument in arguments]
        if len(ids) == 2 and all(i in by_id for i in ids):
            keys.add((label, by_id[ids[0]], by_id[ids[1]]))
        else:
            others += 1
    return keys, others


ROWS_SCRIPT = """
return Array.from(document.querySelectorAll('article.doc')).map(doc => ({
  id: doc.dataset.docId,
  unresolved: (doc.querySelector('.rels-unresolved') || {textContent: ''}).textContent,
  rows: Array.from(doc.querySelectorAll('tr.rel')).map(row => {
    const cell = (name) => row.querySelector(name).textContent;
    const parts = (id) => Array.from(doc.querySelectorAll('.text [data-entity="' + id + '"]'));
    const argument = (id) => ({type: parts(id).map(e => e.dataset.type),
                               spans: parts(id).map(e => [Number(e.dataset.start), Number(e.dataset.end)])});
    return {label: cell('.label'), head: cell('.head span'), headType: cell('.head i'),
            tail: cell('.tail span'), tailType: cell('.tail i'), verdict: row.dataset.verdict || null,
            marker: getComputedStyle(row.querySelector('.marker'), '::before').content,
            headMark: row.dataset.head, tailMark: row.dataset.tail,
            headDrawn: argument(row.dataset.head), tailDrawn: argument(row.dataset.tail)};
  })}));
"""
MARKERS = {"tp": '"✓"', "fp": '"✗"', "fn": '"○"'}


def drawn_key(drawn):
    assert len(set(drawn["type"])) == 1, drawn
    return drawn["type"][0], merge([tuple(span) for span in drawn["spans"]])


def test_relation_rows_and_their_verdicts(browser, rendered):
    preds, golds, page = rendered
    browser.get(page.as_uri())
    pages = {doc["id"]: doc for doc in browser.execute_script(ROWS_SCRIPT)}
    seen = Counter()
    for pred, gold in zip(preds, golds):
        doc = pages[str(pred.id)]
        pred_keys, pred_others = relation_key_sets(pred)
        gold_keys, _ = relation_key_sets(gold)
        shown = Counter()
        for row in doc["rows"]:
            head, tail = drawn_key(row["headDrawn"]), drawn_key(row["tailDrawn"])
            # the row names the entities it highlights, with their text and type
            assert (row["headType"], row["tailType"]) == (head[0], tail[0])
            assert row["head"] == " ".join(pred.text[a:b] for a, b in head[1]), row
            assert row["tail"] == " ".join(pred.text[a:b] for a, b in tail[1]), row
            shown[(row["label"], head, tail, row["verdict"])] += 1
            assert row["marker"] == MARKERS[row["verdict"]]
        # merge() joins touching fragments: compare with the input's keys merged the same way
        def merged(keys):
            return {(label, (h[0], merge(h[1])), (t[0], merge(t[1]))) for label, h, t in keys}
        expected = Counter({(*key, "tp"): 1 for key in merged(pred_keys & gold_keys)})
        expected.update({(*key, "fp"): 1 for key in merged(pred_keys - gold_keys)})
        expected.update({(*key, "fn"): 1 for key in merged(gold_keys - pred_keys)})
        assert shown == expected, pred.id  # one row per distinct relation: the repeated R-line once
        assert len(doc["rows"]) == len(pred_keys | gold_keys)
        assert doc["unresolved"].startswith(f"{pred_others} R-line") and pred_others == 1
        seen.update(verdict for *_, verdict in shown)
    assert seen["tp"] and seen["fp"] and seen["fn"]
    synthetic = pages["synthetic<&>"]["rows"]
    assert {row["head"] for row in synthetic} == {"Жолт <Хорняк>", 'як> & "Бананц"'}  # escaped, shown as written
    assert browser.execute_script("return document.querySelectorAll('.rels script, .rels b').length") == 0


def test_hovering_a_relation_row_highlights_its_two_entities(browser, rendered):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, _, page = rendered
    browser.get(page.as_uri())
    lit = "return Array.from(document.querySelectorAll('.ent.hl')).map(e => e.dataset.entity)"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.rel")
    assert len(rows) > 20
    picked = rows[:: max(1, len(rows) // 12)] + [r for r in rows if r.get_attribute("data-verdict") == "fn"][:2]
    for row in picked:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
        ActionChains(browser).move_to_element(row.find_element(By.CSS_SELECTOR, ".label")).perform()
        marks = {row.get_attribute("data-head"), row.get_attribute("data-tail")}
        highlighted = browser.execute_script(lit)
        assert set(highlighted) == marks, (row.text, highlighted)
        expected = browser.execute_script(
            "return document.querySelectorAll(arguments[0]).length",
            ", ".join(f'.text [data-entity="{mark}"]' for mark in marks))
        assert len(highlighted) == expected  # every fragment of both, nothing else
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, "h1")).perform()
    assert browser.execute_script(lit) == []
    # filters hide the rows of hidden verdicts and of hidden argument types
    browser.find_element(By.CSS_SELECTOR, 'input[data-filter="verdict"][value="fn"]').click()
    visible = "return Array.from(document.querySelectorAll('tr.rel')).filter(r => r.getClientRects().length)" \
              ".map(r => [r.dataset.verdict, r.querySelector('.head i').textContent, r.querySelector('.tail i').textContent])"
    assert all(verdict != "fn" for verdict, *_ in browser.execute_script(visible))
    browser.find_element(By.CSS_SELECTOR, 'input[data-filter="type"][value="PERSON"]').click()
    shown = browser.execute_script(visible)
    assert shown and all("PERSON" not in row and row[0] != "fn" for row in shown)
    logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == [], logs


def test_relation_rows_are_escaped_and_unresolvable_ones_counted():
    text = "<b>Жолт</b> & Бананц"
    entities = [Entity("PERSON", ((0, 11),), "T1"), Entity("ORGANIZATION", ((14, 20),), "T2")]
    relations = ["R1\tWORKS<i>AS Arg1:T1 Arg2:T2", "R2\tWORKPLACE Arg1:T1 Arg2:T7"]
    page = render_page([(Document("1", text, entities, relations), None)])
    row = re.search(r'<tr class="rel".*?</tr>', page, re.S).group(0)
    assert "<b>" not in row and "<i>" not in row
    assert "&lt;b&gt;Жолт&lt;/b&gt;" in row and 'data-label="WORKS&lt;i&gt;AS"' in row
    assert page.count('<tr class="rel"') == 1 and "1 R-line(s) not shown" in page


def test_page_shows_normal_forms_and_groups_the_document_gives():
    from nerelproc.io.document import Document, parse_entity_line
    from nerelproc.analysis.render import render_page

    text = "Андреем Травниковым недовольны. Травников ответил."
    entities = [parse_entity_line(line, text) for line in
                ("T1\tPERSON 0 19\tАндреем Травниковым", "T2\tPERSON 32 41\tТравников")]
    given = Document("d", text, entities, normal={"T1": "Андрей Травников", "T2": "Травников"},
                     groups=[{"name": "Андрей Травников", "type": "PERSON", "mentions": ["T1", "T2"]}])
    page = render_page([(given, None)])
    assert 'data-group="1.g1" title="Андрей Травников">Андреем Травниковым<' in page
    assert 'data-group="1.g1" title="Травников">Травников<' in page
    alone = render_page([(Document("d", text, entities[:1]), None)])  # no names given: made for the page
    assert 'title="Андрей Травников"' in alone and not re.search(r'<span class="ent[^>]* data-group=', alone)


def test_hovering_an_entity_shows_its_normal_form_and_lights_its_group(browser, rendered):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from nerelproc.names import normal_form

    _, _, page = rendered
    browser.get(page.as_uri())
    elements = browser.find_elements(By.CSS_SELECTOR, ".text .ent")
    for el in elements[::25]:
        if el.get_attribute("data-verdict") != "fn":  # the predicted ones: named from their own surface
            assert el.get_attribute("title") == normal_form(el.text, el.get_attribute("data-type")) or \
                len(browser.find_elements(By.CSS_SELECTOR, f'[data-entity="{el.get_attribute("data-entity")}"]')) > 1
    grouped = [el for el in elements if el.get_attribute("data-group")]
    assert len(grouped) > 4
    lit = ("return Array.from(document.querySelectorAll('.ent.hl, .ent.grp'))"
           ".map(e => [e.dataset.entity, e.dataset.group || null])")
    checked = 0
    for el in grouped[:: max(1, len(grouped) // 6)]:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        ActionChains(browser).move_to_element(el).perform()
        hovered = browser.execute_script("return document.querySelector('.ent:hover:not(:has(.ent:hover))')")
        group = hovered.get_attribute("data-group")
        if not group:
            continue  # the pointer landed on a nested entity of no group
        mates = browser.execute_script("return document.querySelectorAll(arguments[0]).length",
                                       f'.text [data-group="{group}"]')
        highlighted = browser.execute_script(lit)
        assert {g for _, g in highlighted if g == group} == {group}
        assert sum(1 for _, g in highlighted if g == group) == mates > 1
        tip = browser.find_element(By.ID, "tip").text
        assert hovered.get_attribute("title") in tip
        checked += 1
    assert checked >= 3
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, "h1")).perform()
    assert browser.execute_script(lit) == []
