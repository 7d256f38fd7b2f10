"""Format and layout detection, multi-KC splitting, ordering, and real datasets.

Synthetic files are written to ``tmp_path`` for every layout kt recognises;
the real-data tests at the end use ``shared/data`` and skip when it is absent.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

import kt


def load(path, **kw) -> kt.Interactions:
    kw.setdefault("min_attempts", 1)
    return kt.load(str(path), **kw)


def mapping(data: kt.Interactions) -> dict[str, str]:
    return dict(data.colmap.columns)


# --- tabular layouts -------------------------------------------------------------


def test_tsv5(write_file):
    p = write_file(
        "preprocessed_data.csv",
        "user_id\titem_id\ttimestamp\tcorrect\tskill_id\n"
        "0\t10\t0\t1\t3\n0\t11\t0\t0\t3\n1\t10\t0\t1\t4\n1\t12\t0\t1\t4\n1\t13\t0\t0\t5\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("tsv", "tsv5")
    assert mapping(d) == {
        "user_id": "user_id",
        "skill_id": "skill_id",
        "item_id": "item_id",
        "correct": "correct",
        "timestamp": "timestamp",
    }
    assert (d.n_rows, d.n_users) == (5, 2)
    assert not d.has_time  # all-zero timestamps are "no time"
    assert any("timestamps are constant" in n for n in d.notes)
    assert d.vocab.skill_id == ["3", "4", "5"] and d.vocab.item_id == ["10", "11", "12", "13"]


ASSIST09 = (
    "order_id,assignment_id,user_id,assistment_id,problem_id,original,correct,attempt_count,ms_first_response,"
    "tutor_mode,answer_type,sequence_id,student_class_id,position,type,base_sequence_id,skill_id,skill_name,"
    "teacher_id,school_id,hint_count,hint_total,overlap_time,template_id,answer_id,answer_text,first_action,"
    "bottom_hint,opportunity,opportunity_original\n"
    "33022537,277618,64525,33139,51424,1,1,1,32454,tutor,algebra,5948,13241,126,MasteryLearning,5948,10,Box and Whisker,22763,73,0,3,32454,30799,,26,0,,1,1\n"
    "33022709,277618,64525,33150,51435,1,0,2,4922,tutor,algebra,5948,13241,126,MasteryLearning,5948,10,Box and Whisker,22763,73,1,3,4922,30799,,55,0,,2,2\n"
    "33022600,277618,70363,33159,51444,1,1,1,15560,tutor,algebra,5948,11816,22,MasteryLearning,5948,10,Box and Whisker,22763,73,0,3,15560,30799,,88,0,,1,1\n"
    '33022590,277618,70363,33110,51401,1,0,1,20000,tutor,algebra,5948,11816,22,MasteryLearning,5948,10_13,"Box and Whisker, Median",22763,73,0,3,20000,30799,,88,0,,2,2\n'
)


def test_assistments_2009_skill_builder(write_file):
    d = load(write_file("skill_builder_data.csv", ASSIST09))
    assert (d.fmt, d.colmap.layout) == ("csv", "assistments-2009")
    assert mapping(d) == {
        "user_id": "user_id",
        "skill_id": "skill_id",
        "item_id": "problem_id",
        "correct": "correct",
        "order": "order_id",
    }
    assert (d.n_rows, d.n_users) == (4, 2)
    # order_id order within each learner, not file order
    u70363 = d.frame.filter(pl.col("user_id") == "70363")
    assert u70363["order"].to_list() == [33022590.0, 33022600.0]
    assert u70363["skill_id"].to_list() == [["10", "13"], ["10"]]  # "10_13": a numeric multi-KC cell
    assert d.multi_kc


def test_assistments_2012_with_datetimes(write_file):
    p = write_file(
        "2012-2013-data.csv",
        "problem_log_id,skill,problem_id,user_id,assignment_id,start_time,end_time,correct,skill_id,sequence_id\n"
        "1001,Ordering Fractions,51,7,3,2012-09-02 10:00:00.0,2012-09-02 10:01:00.0,1,12,5\n"
        "1002,Ordering Fractions,52,7,3,2012-09-01 09:30:00.5,2012-09-01 09:31:00.0,0,12,5\n"
        "1003,Area,53,8,3,2012-09-03 08:00:00.0,2012-09-03 08:00:30.0,1,14,6\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "assistments-2012")
    assert mapping(d) == {
        "user_id": "user_id",
        "skill_id": "skill_id",
        "item_id": "problem_id",
        "correct": "correct",
        "timestamp": "start_time",
        "order": "problem_log_id",
    }
    assert d.n_rows == 3 and d.has_time
    u7 = d.frame.filter(pl.col("user_id") == "7")
    assert u7["item_id"].to_list() == ["52", "51"]  # by start_time, not by problem_log_id
    assert u7["timestamp"].diff()[1] == pytest.approx(86400 + 1800 - 0.5)


def test_assistments_2017(write_file):
    p = write_file(
        "anonymized_full_release_competition_dataset.csv",
        "studentId,MiddleSchoolId,AveKnow,action_num,skill,problemId,assignmentId,assistmentId,startTime,endTime,timeTaken,correct,original\n"
        "8,2,0.35,0,properties-of-geometric-figures,104051,1,1,1096560000,1096560030,30,1,1\n"
        "8,2,0.35,1,sum-of-interior-angles-more-than-3-sides,104052,1,1,1096560100,1096560160,60,0,1\n"
        "9,2,0.2,0,properties-of-geometric-figures,104051,1,1,1096570000,1096570020,20,0,1\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "assistments-2017")
    assert mapping(d) == {
        "user_id": "studentId",
        "skill_id": "skill",
        "item_id": "problemId",
        "correct": "correct",
        "timestamp": "startTime",
    }
    assert (d.n_rows, d.n_users) == (3, 2) and d.has_time
    assert not d.multi_kc  # hyphenated names are single KCs


def test_assistments_2015_partial_credit(write_file):
    p = write_file(
        "2015_100_skill_builders_main_problems.csv",
        "user_id,log_id,sequence_id,correct\n50121,167478035,7014,0.0\n50121,167478043,7014,1.0\n50964,167478053,7014,0.25\n50964,167478070,7015,1.0\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "assistments-2015")
    assert mapping(d) == {"user_id": "user_id", "skill_id": "sequence_id", "correct": "correct", "order": "log_id"}
    assert d.n_rows == 4 and d.frame["correct"].to_list() == [0, 1, 0, 1]
    assert d.stats["rounded_partial_credit"] == 1


DATASHOP = (
    "Row\tSample Name\tAnon Student Id\tProblem Hierarchy\tProblem Name\tProblem View\tStep Name\t"
    "Step Start Time\tFirst Transaction Time\tCorrect First Attempt\tIncorrects\tHints\tCorrects\tKC(Default)\tOpportunity(Default)\n"
    "1\tAll Data\tstu_a\tUnit 1\tP1\t1\tS1\t2005-09-09 12:24:30.0\t2005-09-09 12:24:35.0\t1\t0\t0\t1\tAdd~~Multiply\t1~~1\n"
    "2\tAll Data\tstu_a\tUnit 1\tP1\t1\tS2\t2005-09-09 12:25:00.0\t2005-09-09 12:25:09.0\t0\t1\t0\t1\tAdd\t2\n"
    "3\tAll Data\tstu_b\tUnit 1\tP1\t1\tS1\t2005-09-10 08:00:00.0\t2005-09-10 08:00:04.0\t1\t0\t0\t1\t\t\n"
    "4\tAll Data\tstu_b\tUnit 1\tP2\t1\tS1\t2005-09-10 08:01:00.0\t2005-09-10 08:01:05.0\t1\t0\t0\t1\tMultiply\t1\n"
)


def test_datashop_step_export(write_file):
    p = write_file("ds_step.txt", DATASHOP)
    with pytest.raises(kt.errors.DataError, match="line 4, column 'KC\\(Default\\)': empty KC id"):
        load(p)
    d = load(p, drop_nulls=True)
    assert (d.fmt, d.colmap.layout) == ("tsv", "datashop")
    assert mapping(d) == {
        "user_id": "Anon Student Id",
        "skill_id": "KC(Default)",
        "item_id": "Problem Name",
        "correct": "Correct First Attempt",
        "timestamp": "First Transaction Time",
        "order": "Row",
    }
    assert d.colmap.item_step == "Step Name"
    assert d.n_rows == 3 and d.has_time and d.multi_kc
    assert d.frame["skill_id"].to_list() == [["Add", "Multiply"], ["Add"], ["Multiply"]]
    assert d.frame["item_id"].to_list() == ["P1:S1", "P1:S2", "P2:S1"]  # a problem-step is the item
    assert d.vocab.skill_id == ["Add", "Multiply"]


def test_datashop_other_kc_model(write_file):
    p = write_file(
        "ds.csv",
        "Anon Student Id,Problem Name,Step Name,Correct First Attempt,KC(SubSkills)\ns1,P,A,1,x\ns1,P,B,0,y\n",
    )
    d = load(p)
    assert d.colmap.layout == "datashop" and d.colmap.get("skill_id") == "KC(SubSkills)"


def test_pybkt(write_file):
    p = write_file(
        "pybkt.csv",
        "order_id,skill_name,correct,user_id\n3,Box and Whisker,1,u1\n1,Box and Whisker,0,u1\n2,Circle Graph,1,u2\n4,Circle Graph,1,u2\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "pybkt")
    assert mapping(d) == {"user_id": "user_id", "skill_id": "skill_name", "correct": "correct", "order": "order_id"}
    assert d.frame.filter(pl.col("user_id") == "u1")["order"].to_list() == [1.0, 3.0]


def test_ednet_riiid(write_file):
    p = write_file(
        "train.csv",
        "row_id,timestamp,user_id,content_id,content_type_id,task_container_id,user_answer,answered_correctly\n"
        "0,0,115,5692,0,1,3,1\n1,56943,115,5716,0,2,2,1\n2,118363,115,128,0,0,0,0\n3,0,124,7900,0,0,0,1\n4,26575,124,7876,0,1,3,0\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "ednet-riiid")
    assert mapping(d) == {
        "user_id": "user_id",
        "item_id": "content_id",
        "correct": "answered_correctly",
        "timestamp": "timestamp",
    }
    assert (d.n_rows, d.n_users) == (5, 2) and d.has_time
    assert any("using the item column 'content_id' as the KC" in n for n in d.notes)
    assert d.frame["skill_id"].to_list() == d.frame["item_id"].to_list()


def test_eedi(write_file):
    p = write_file(
        "train_task_3_4.csv",
        "QuestionId,UserId,AnswerId,IsCorrect,CorrectAnswer,AnswerValue\n898,2111,280203,1,2,2\n767,3062,55638,1,3,3\n165,2111,386481,0,2,1\n",
    )
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("csv", "eedi")
    assert mapping(d) == {"user_id": "UserId", "item_id": "QuestionId", "correct": "IsCorrect"}
    assert (d.n_rows, d.n_users) == (3, 2)


def test_gzip_csv(write_file):
    p = write_file("data.csv.gz", "user_id,skill_id,correct\nu1,a,1\nu1,b,0\nu2,a,1\n")
    d = load(p)
    assert (d.fmt, d.colmap.layout, d.n_rows) == ("csv", "generic", 3)


def test_tsv_and_bom(write_file):
    d = load(write_file("data.tsv", "\ufeffUser_ID\tSkill_ID\tCorrect\nu1\ta\t1\nu1\tb\t0\n"))
    assert d.fmt == "tsv" and d.n_rows == 2
    assert d.colmap.get("user_id").lstrip("\ufeff") == "User_ID"  # header names match case-insensitively


def test_semicolon_csv(write_file):
    d = load(write_file("data.csv", "user_id;skill_id;correct\nu1;a;1\nu1;b;0\n"))
    assert d.fmt == "csv" and d.n_rows == 2


def test_parquet_native_types(tmp_path):
    p = tmp_path / "data.parquet"
    pl.DataFrame(
        {
            "user_id": [1, 1, 2],
            "skill_id": ["a", "b", "a"],
            "correct": [True, False, True],
            "timestamp": pl.Series(["2020-01-02", "2020-01-01", "2020-01-03"]).str.to_datetime(),
            "extra": [[1], [2], [3]],  # a column kt does not use never matters
        }
    ).write_parquet(p)
    d = load(p)
    assert (d.fmt, d.colmap.layout) == ("parquet", "generic")
    assert (d.n_rows, d.n_users) == (3, 2) and d.has_time
    assert d.frame.filter(pl.col("user_id") == "1")["skill_id"].to_list() == ["b", "a"]
    assert d.frame["line"].to_list() == [2, 1, 3]  # row numbers


def test_parquet_error_names_row(tmp_path):
    p = tmp_path / "data.parquet"
    pl.DataFrame({"user_id": ["u", "u", "v"], "skill_id": ["a", "b", "a"], "correct": [1, 5, 0]}).write_parquet(p)
    with pytest.raises(kt.errors.DataError, match="row 2, column 'correct': value 5"):
        load(p)


# --- line formats ---------------------------------------------------------------------


def test_three_line(write_file):
    d = load(write_file("builder_train.csv", "3\n1,2,3,\n1,0,1,\n2\n4,5\n0,0\n1\n7\n1\n"))
    assert (d.fmt, d.colmap.layout) == ("3-line", "3-line")
    assert (d.n_rows, d.n_users) == (6, 3)
    assert d.vocab.user_id == ["builder_train:1", "builder_train:2", "builder_train:3"]
    assert d.frame.filter(pl.col("user_id") == "builder_train:1")["skill_id"].to_list() == ["1", "2", "3"]
    assert any("no learner ids" in n for n in d.notes)


def test_three_line_with_user_id_header(write_file):
    d = load(write_file("junyi_test1.csv", "224071\n11,11,48\n0,0,1\n144197\n31,31\n1,1\n"))
    assert d.fmt == "3-line-userid"
    assert d.vocab.user_id == ["144197", "224071"] and d.n_rows == 5


def test_akt_three_line(write_file):
    d = load(write_file("assist2015_test4.csv", "1,351830\n11,11,78\n1,1,0\n2,341941\n8,8\n1,1\n"))
    assert d.fmt == "akt-3line"
    assert d.vocab.user_id == ["341941", "351830"]  # the original ids, not the indices
    assert d.n_rows == 5 and "item_id" not in d.colmap.columns


def test_akt_four_line(write_file):
    d = load(
        write_file("assist2009_pid_test1.csv", "891,78276\n7410,7410,10076\n37,54,54\n0,0,1\n1104,89171\n8340,8341\n54,45\n1,1\n")
    )
    assert (d.fmt, d.colmap.layout) == ("akt-4line", "akt-4line")
    assert d.vocab.user_id == ["78276", "89171"]
    assert d.vocab.item_id == ["10076", "7410", "8340", "8341"]
    u = d.frame.filter(pl.col("user_id") == "78276")
    assert u["item_id"].to_list() == ["7410", "7410", "10076"] and u["skill_id"].to_list() == ["37", "54", "54"]
    assert u["line"].to_list() == [4, 4, 4]  # rows point at their response line


def test_kcmn_four_line(write_file):
    d = load(write_file("ednet_test1.csv", "3,u821650\n7494,6947,204,\n171,114,105\n0,1,0\n2,u600974\n7959,1143\n173,165\n0,0\n"))
    assert d.fmt == "kcmn-4line"
    assert d.vocab.user_id == ["u600974", "u821650"] and d.n_rows == 5
    assert d.vocab.skill_id == ["105", "114", "165", "171", "173"]


def test_line_format_crlf_and_blank_lines(write_file):
    d = load(write_file("seq.txt", "3\r\n1,2,3\r\n1,0,1\r\n\r\n2\r\n4,5\r\n0,0\r\n\r\n"))
    assert d.fmt == "3-line" and d.n_rows == 5


def test_line_format_mismatched_lengths(write_file):
    with pytest.raises(kt.errors.DataError, match="blocks do not line up"):
        load(write_file("seq.txt", "3\n1,2\n1,0,1\n2\n4,5\n0,0\n"))


# --- multi-KC cells ----------------------------------------------------------------------


def test_multi_kc_splitting(write_file):
    p = write_file(
        "kc.csv",
        'user_id,skill_id,correct\nu,A~~B,1\nu,c; d,0\nu,1_13,1\nu,"3,5",0\nu,Calculate_unit_rate,1\nu,7,1\nu,2_2,0\nu, x ~~ ~~y ,1\n',
    )
    d = load(p)
    assert d.multi_kc
    assert d.frame["skill_id"].to_list() == [
        ["A", "B"],
        ["c", "d"],
        ["1", "13"],
        ["3", "5"],
        ["Calculate_unit_rate"],
        ["7"],
        ["2"],
        ["x", "y"],
    ]
    assert "Calculate_unit_rate" in d.vocab.skill_id and "Calculate" not in d.vocab.skill_id
    # every list element is encoded
    idx = d.frame["skill_idx"].to_list()
    assert [len(i) for i in idx] == [2, 2, 2, 2, 1, 1, 1, 2] and min(min(i) for i in idx) >= 0
    assert d.explode().height == 13


def test_names_with_underscores_are_not_split(write_file):
    d = load(write_file("kc.csv", "user_id,skill_id,correct\nu,Calculate_unit_rate,1\nu,Plot_pi,0\nu,x_1,1\nu,12,1\n"))
    assert not d.multi_kc
    assert d.frame["skill_id"].to_list() == ["Calculate_unit_rate", "Plot_pi", "x_1", "12"]


def test_multi_kc_inspect_and_convert(cli, write_file, tmp_path):
    p = write_file("kc.csv", "user_id,skill_id,correct\nu,A~~B,1\nu,C,0\n")
    res = cli("data", "inspect", p, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["multi_kc_rows"] == 1 and rep["kcs"] == 3
    out = tmp_path / "out.csv"
    assert cli("data", "convert", p, "--out", out).exit_code == 0
    back = load(out)
    assert back.frame["skill_id"].to_list() == [["A", "B"], ["C"]]


# --- ordering ------------------------------------------------------------------------------


def test_sort_by_timestamp_then_order_then_file_order(write_file):
    p = write_file(
        "o.csv",
        "user_id,skill_id,correct,timestamp,order_id\n"
        "u1,r1,1,20,1\n"  # line 2
        "u2,s1,1,5,9\n"  # line 3
        "u1,r2,0,10,5\n"  # line 4
        "u1,r3,1,10,2\n"  # line 5
        "u1,r4,0,10,2\n"  # line 6: ties r3 on time and order -> file order
        "u2,s2,0,,1\n"  # line 7: no time -> after timed rows
        "u1,r5,1,10,2\n",  # line 8
    )
    d = load(p)
    assert d.frame.filter(pl.col("user_id") == "u1")["skill_id"].to_list() == ["r3", "r4", "r5", "r2", "r1"]
    assert d.frame.filter(pl.col("user_id") == "u2")["skill_id"].to_list() == ["s1", "s2"]
    # learners are contiguous
    assert d.frame["user_id"].to_list() == ["u1"] * 5 + ["u2"] * 2


def test_sort_by_order_then_file_order_without_time(write_file):
    p = write_file("o.csv", "user_id,skill_id,correct,order_id\nu1,a,1,3\nu2,x,0,1\nu1,b,0,1\nu1,c,1,3\nu1,d,1,2\n")
    d = load(p)
    assert d.frame.filter(pl.col("user_id") == "u1")["skill_id"].to_list() == ["b", "d", "a", "c"]


def test_file_order_kept_without_time_or_order(write_file):
    p = write_file("o.csv", "user_id,skill_id,correct\nu2,z,1\nu1,c,1\nu2,y,0\nu1,a,0\nu1,b,1\n")
    d = load(p)
    assert d.frame.filter(pl.col("user_id") == "u1")["skill_id"].to_list() == ["c", "a", "b"]
    assert d.frame.filter(pl.col("user_id") == "u2")["skill_id"].to_list() == ["z", "y"]


def test_map_overrides_detection(write_file):
    p = write_file("m.csv", "student,kc,right,other\ns1,a,1,0\ns1,b,0,1\n")
    with pytest.raises(kt.errors.DataError, match="no column for 'correct'"):
        load(p)
    d = load(p, overrides={"correct": "right", "skill_id": "OTHER"})
    assert d.colmap.get("user_id") == "student"
    assert d.colmap.get("correct") == "right" and d.colmap.get("skill_id") == "other"
    assert d.colmap.explicit == frozenset({"correct", "skill_id"})


# --- real datasets (skipped when shared/data is absent) ---------------------------------------


def test_real_gervet_inspect(cli, shared_file):
    p = shared_file("assist2009/gervet/preprocessed_data_train.csv.gz")
    res = cli("data", "inspect", p, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["rows"] == 220070 and rep["learners"] == 2491
    assert rep["format"] == "tsv"
    assert rep["mapping"] == {
        "layout": "tsv5",
        "columns": {
            "user_id": "user_id",
            "skill_id": "skill_id",
            "item_id": "item_id",
            "correct": "correct",
            "timestamp": "timestamp",
        },
    }
    assert rep["kcs"] == 149 and rep["time_span_days"] is None
    assert rep["correct_rate"] == pytest.approx(0.658, abs=0.005)


def test_real_dkvmn_three_line(cli, shared_file):
    p = shared_file("assist2009/dkvmn/assist2009_updated_train.csv.gz")
    res = cli("data", "inspect", p, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["format"] == "3-line" and rep["kcs"] == 110
    test = load(shared_file("assist2009/dkvmn/assist2009_updated_test.csv.gz"))
    # DATA.md: train+test = 325,637 rows, 4,151 sequences
    assert rep["rows"] + test.n_rows == 325637
    assert rep["learners"] + test.n_users == 4151


def test_real_akt_fold(cli, shared_file):
    p = shared_file("assist2009/akt_pid/assist2009_pid_test1.csv.gz")
    res = cli("data", "inspect", p, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["format"] == "akt-4line" and rep["mapping"]["layout"] == "akt-4line"
    assert rep["rows"] == 60915 and rep["learners"] == 830
    users = json.loads(shared_file("assist2009/akt_pid/user.json").read_text())
    assert set(load(p).vocab.user_id) <= {str(u) for u in users}  # original ASSISTments ids


def test_real_cognitive_tutor(cli, shared_file):
    p = shared_file("cognitive_tutor_ct/ct.csv.gz")
    res = cli("data", "inspect", p, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["mapping"]["layout"] == "datashop"
    assert rep["mapping"]["columns"]["user_id"] == "Anon Student Id" and rep["mapping"]["item_step"] == "Step Name"
    assert (rep["rows"], rep["learners"], rep["kcs"], rep["items"]) == (16858, 587, 12, 750)
    assert rep["multi_kc_rows"] == 0 and rep["time_span_days"] is None  # MM:SS.0 times are ignored
    assert any("does not hold parseable times" in w for w in rep["warnings"])
    assert rep["duplicates"] == 1  # the file repeats one step row verbatim


def test_real_ednet_kcmn(shared_file):
    d = load(shared_file("ednet_kcmn/ednet_test1.csv.gz"))
    assert d.fmt == "kcmn-4line"
    assert (d.n_rows, d.n_users, len(d.vocab.skill_id)) == (81294, 618, 142)
    assert all(u.startswith("u") for u in d.vocab.user_id[:10])


def test_real_junyi_ueno(shared_file):
    d = load(shared_file("junyi2015_ueno/junyi_test1.csv.gz"), min_attempts=2)
    assert d.fmt == "3-line-userid"
    assert d.n_users == 1957 and d.n_rows == 664069
    assert d.frame.group_by("user_idx").len()["len"].min() >= 50


def test_real_raw_assistments_sample(shared_file):
    p = shared_file("assist2009/raw_sample/assistment_test15.csv.gz")  # UTF-8 with BOM, empty skill ids
    with pytest.raises(kt.errors.DataError, match="line 1551 \\(and 337 more\\), column 'skill_id': empty KC id"):
        load(p)
    d = load(p, drop_nulls=True)
    assert d.colmap.layout == "assistments-2009"
    assert (d.n_rows, d.n_users, d.stats["dropped_nulls"]) == (1549, 15, 338)


def test_real_ednet_small_timestamps(shared_file):
    d = load(shared_file("ednet_small/preprocessed_data_test.csv.gz"))
    assert d.colmap.layout == "tsv5" and d.has_time
    assert (d.n_rows, d.n_users) == (87210, 1000)
    ts = d.frame["timestamp"]
    assert (ts.max() - ts.min()) / 86400 == pytest.approx(1186, abs=1)


def test_real_eedi(shared_file):
    d = load(shared_file("eedi_nips2020_task34/test_public_task_4_more_splits.csv.gz"))
    assert d.colmap.layout == "eedi"
    assert (d.n_rows, d.n_users, len(d.vocab.item_id)) == (74891, 615, 942)


def test_kc_cell_of_only_separators_is_an_empty_kc(tmp_path):
    import kt
    from kt.errors import DataError

    p = tmp_path / "sep.csv"
    p.write_text("user_id,skill_id,correct\nu,a~~b,1\nu,~~,0\nu,a,1\n")
    with pytest.raises(DataError, match="line 3.*only separators"):
        kt.load(str(p))
    d = kt.load(str(p), drop_nulls=True)
    assert d.n_rows == 2 and d.multi_kc
