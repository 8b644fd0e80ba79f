"""`relation_rows`: one row per relation, with the entity labels of head and tail."""
import spacy
from spacy.tokens import DocBin

from electramed_spacy.doc.relations import Relation, relation_rows, set_relations


def test_rows_carry_the_entity_labels_and_survive_a_docbin():
    nlp = spacy.blank("en")
    doc = nlp("Ketoconazole raises the levels of simvastatin.")
    head, tail = doc.char_span(0, 12, label="DRUG"), doc.char_span(34, 45, label="DRUG_N")
    doc.ents = [head, tail]
    set_relations(doc, [Relation(head, tail, "mechanism", 0.91234)])
    expected = [{"head": "Ketoconazole", "head_label": "DRUG", "head_start_char": 0, "tail": "simvastatin",
                 "tail_label": "DRUG_N", "tail_start_char": 34, "label": "mechanism", "score": 0.9123}]
    assert relation_rows(doc) == expected
    again, = DocBin(store_user_data=True, docs=[doc]).get_docs(nlp.vocab)
    assert relation_rows(again) == expected
