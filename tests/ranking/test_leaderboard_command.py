"""`manage.py leaderboard`: --json shape, the text table, --from-csv without a database, one-line errors,
--study on stored votes, and the PandaLM demo ranked end to end (command and page)."""
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ranking.ratings import compute_leaderboard

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator", "created_at"]
ROW_KEYS = {"system", "rating", "ci_low", "ci_high", "rank", "votes"}

# alpha mostly beats beta and gamma, beta mostly beats gamma.
VOTES = ([("alpha", "beta", "a")] * 6 + [("alpha", "beta", "b")] * 2 + [("beta", "gamma", "a")] * 5
         + [("beta", "gamma", "tie")] * 2 + [("alpha", "gamma", "a")] * 5 + [("gamma", "alpha", "both_bad")])


def write_votes(path: Path, votes=VOTES, weights=None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER + (["weight"] if weights else []))
        for i, (a, b, winner) in enumerate(votes):
            row = [f"q{i % 4}", a, b, 0, 0, winner, f"ann{i % 3}", f"2024-05-01T12:{i:02d}:00+00:00"]
            writer.writerow(row + ([weights[i]] if weights else []))
    return path


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("leaderboard", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("leaderboard", *args, stdout=out, stderr=err)
    assert exit_info.value.code == 1
    return err.getvalue()


# --- --from-csv: not marked django_db, so any database access would fail these tests -----------------

def test_from_csv_json_shape(tmp_path):
    path = write_votes(tmp_path / "votes.csv")
    out, _ = run("--from-csv", str(path), "--json", "--rounds", "30", "--seed", "4")
    data = json.loads(out)
    assert data["method"] == "bt"
    assert [row["system"] for row in data["ratings"]] == ["alpha", "beta", "gamma"]
    for row in data["ratings"]:
        assert ROW_KEYS <= set(row)
        assert row["ci_low"] <= row["rating"] <= row["ci_high"]
        assert isinstance(row["rank"], int) and isinstance(row["votes"], int)
    assert [row["votes"] for row in data["ratings"]] == [14, 15, 13]
    assert data["rounds"] == 30 and data["seed"] == 4

    # Exactly what the pure core computes for the same votes.
    a, b, w = zip(*VOTES, strict=True)
    expected = compute_leaderboard(a, b, w, method="bt", rounds=30, seed=4).to_dict()
    assert data["ratings"] == expected["ratings"]


@pytest.mark.parametrize("method", ["elo", "bt"])
def test_from_csv_text_table_is_aligned(tmp_path, method):
    path = write_votes(tmp_path / "votes.csv")
    out, _ = run("--from-csv", str(path), "--method", method, "--rounds", "10")
    lines = out.splitlines()
    assert lines[0].startswith(("Elo from", "Bradley-Terry from")) and "21 votes, 3 systems" in lines[0]
    table = lines[1:5]
    assert table[0].split() == ["rank", "system", "rating", "95%", "CI", "low", "95%", "CI", "high", "votes", "win",
                                "rate"]
    assert set(table[1]) == {"-", " "}
    assert len({len(line) for line in table}) == 1  # every row as wide as the header
    assert [line.split()[1] for line in lines[3:6]] == ["alpha", "beta", "gamma"]
    assert re.match(r"\s*1\s+alpha\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\s+14\s+\d+\.\d%$", lines[3])


def test_from_csv_weighted_elo_uses_the_weight_column(tmp_path):
    weights = [1.0 if i % 2 else 0.25 for i in range(len(VOTES))]
    path = write_votes(tmp_path / "weighted.csv", weights=weights)
    out, _ = run("--from-csv", str(path), "--method", "weighted_elo", "--json", "--rounds", "0")
    a, b, w = zip(*VOTES, strict=True)
    expected = compute_leaderboard(a, b, w, method="weighted_elo", weights=weights, rounds=0).ratings()
    assert {row["system"]: row["rating"] for row in json.loads(out)["ratings"]} == pytest.approx(expected)


def test_from_csv_weighted_elo_without_weights_is_a_clear_error(tmp_path):
    path = write_votes(tmp_path / "votes.csv")
    err = run_failing("--from-csv", str(path), "--method", "weighted_elo")
    assert err.strip() == (f"{path}:1: weight: missing column; --method weighted_elo needs a per-vote weight in "
                           "[0, 1] (e.g. the instance's normalised separability clipped to [0, 1])")


def test_from_csv_reads_chatbot_arena_columns(tmp_path):
    path = tmp_path / "arena.csv"
    path.write_text("model_a,model_b,winner,question_id\n"
                    "gpt-4,vicuna-13b,model_a,1\nvicuna-13b,gpt-4,model_b,2\ngpt-4,vicuna-13b,tie,3\n"
                    "vicuna-13b,gpt-4,tie (bothbad),4\nvicuna-13b,gpt-4,model_a,5\n", encoding="utf-8")
    data = json.loads(run("--from-csv", str(path), "--json", "--method", "elo", "--rounds", "0")[0])
    assert data["ratings"][0]["system"] == "gpt-4" and data["ratings"][0]["votes"] == 5


def test_bad_csv_is_one_line_with_file_line_and_field(tmp_path):
    path = write_votes(tmp_path / "bad.csv", votes=VOTES[:3] + [("alpha", "beta", "maybe")])
    err = run_failing("--from-csv", str(path))
    assert err.strip() == f"{path}:5: winner: 'maybe' is not one of a, b, tie, both_bad"
    assert len(err.strip().splitlines()) == 1


def test_unrankable_csv_names_the_file(tmp_path):
    path = write_votes(tmp_path / "islands.csv", votes=[("alpha", "beta", "a"), ("gamma", "delta", "b")])
    err = run_failing("--from-csv", str(path))
    assert err.startswith(f"{path}: systems form 2 disconnected groups")


def test_cli_exit_status_and_no_database(tmp_path):
    """The real command line: exit 1 with the one line on stderr; and a good file is ranked even though
    the configured database cannot be opened (it is never touched)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/none.sqlite3", "PYTHONUNBUFFERED": "1"}
    bad = write_votes(tmp_path / "bad.csv", votes=[("alpha", "beta", "a"), ("alpha", "alpha", "a")])
    result = subprocess.run([sys.executable, "manage.py", "leaderboard", "--from-csv", str(bad)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{bad}:3: system_b: 'alpha' is the same system as system_a; a vote compares two systems"]
    assert result.stdout == ""

    good = write_votes(tmp_path / "good.csv")
    result = subprocess.run([sys.executable, "manage.py", "leaderboard", "--from-csv", str(good), "--json",
                             "--rounds", "5"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ratings"][0]["system"] == "alpha"
    assert not (tmp_path / "missing-dir").exists()


# --- --study --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_study_json_and_table():
    from tests.factories import add_vote, make_rating_study

    study = make_rating_study("cmd-study", systems=("alpha", "beta", "gamma"))
    for x, y, outcome in [("alpha", "beta", "x")] * 6 + [("beta", "gamma", "x")] * 4 + [("gamma", "alpha", "y")] * 3:
        add_vote(study, x, y, outcome, separability=0.5, apply=False)

    data = json.loads(run("--study", study.slug, "--json", "--method", "elo", "--rounds", "0")[0])
    assert data["method"] == "elo" and [r["system"] for r in data["ratings"]][0] == "alpha"
    assert all(ROW_KEYS <= set(row) for row in data["ratings"])
    weighted = json.loads(run("--study", study.slug, "--json", "--method", "weighted_elo", "--rounds", "0")[0])
    assert weighted["method"] == "weighted_elo"

    out, _ = run("--study", study.slug)
    assert out.startswith("Bradley-Terry from study cmd-study: 13 votes, 3 systems, 100 bootstrap rounds")

    with pytest.raises(Exception, match="no study 'nope'"):
        run("--study", "nope")


@pytest.mark.django_db
def test_pandalm_demo_ranks_llama_first_and_cerebras_last(client, settings):
    """The PandaLM human test set, loaded by load_demo: through the command and through the public page."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    from demo.sources import PANDALM_STUDY  # the demo study's slug ("pandalm-instructions")

    call_command("load_demo", "--skip-separability", "--json", stdout=io.StringIO(), stderr=io.StringIO())

    data = json.loads(run("--study", PANDALM_STUDY, "--json")[0])
    systems = [row["system"] for row in data["ratings"]]
    assert len(systems) == 5 and systems[0] == "llama-7b" and systems[-1] == "cerebras-gpt-6.7B"
    assert data["ratings"][0]["rank"] == 1 and data["ratings"][-1]["rank"] == 5
    # 939 items, three annotators each: the demo skips the 60 of 999 whose response is empty or not text
    assert sum(row["votes"] for row in data["ratings"]) == 2 * 3 * 939

    html = client.get(f"/leaderboard/{PANDALM_STUDY}/").content.decode()
    table = re.search(r'<table class="leaderboard">(.*?)</table>', html, re.S).group(1)
    on_page = re.findall(r'<th scope="row" class="system">(.*?)</th>', table)
    assert on_page[0] == "llama-7b" and on_page[-1] == "cerebras-gpt-6.7B" and len(on_page) == 5
    # Loaded without separability (and PandaLM has one response per model nearly everywhere): every vote has
    # the floor weight, so the weighted methods rank all five systems as the plain ones do, and say so.
    assert "not available" not in html
    assert "weights are all the floor, the weighted board is the plain one" in html
    for plain, weighted in (("bt", "weighted_bt"), ("elo", "weighted_elo")):
        plain_board = json.loads(run("--study", PANDALM_STUDY, "--json", "--method", plain, "--rounds", "20")[0])
        weighted_board = json.loads(run("--study", PANDALM_STUDY, "--json", "--method", weighted,
                                        "--rounds", "20")[0])
        assert weighted_board["ratings"] == plain_board["ratings"] and len(weighted_board["ratings"]) == 5
        assert weighted_board["point"] == "bootstrap median of 20 rounds"


def test_anchor_shifts_every_rating_so_the_named_system_gets_its_published_value(tmp_path):
    import io
    import json

    from django.core.management import call_command

    path = tmp_path / "arena.csv"
    path.write_text("model_a,model_b,winner\nx,y,model_a\nx,y,model_b\nx,y,model_a\ny,z,tie\nz,x,model_b\n")
    plain, anchored = io.StringIO(), io.StringIO()
    call_command("leaderboard", "--from-csv", str(path), "--json", "--rounds", "5", stdout=plain)
    call_command("leaderboard", "--from-csv", str(path), "--json", "--rounds", "5", "--anchor", "y=1114",
                 stdout=anchored)
    before = {r["system"]: r for r in json.loads(plain.getvalue())["ratings"]}
    after = {r["system"]: r for r in json.loads(anchored.getvalue())["ratings"]}
    assert after["y"]["rating"] == 1114
    shift = after["y"]["rating"] - before["y"]["rating"]
    for name in before:
        assert after[name]["rating"] - before[name]["rating"] == pytest.approx(shift)
        assert after[name]["rank"] == before[name]["rank"]
