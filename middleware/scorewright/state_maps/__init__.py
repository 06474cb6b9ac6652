"""Bundled state maps (`scorewright serve demo`), their event scripts and motifs, and the JSON
Schema every map is checked against."""
