"""Deterministic generator of realistic users.csv files for the benchmark (issue #6).

    python bench/generate.py --rows 1000000 -o bench/out/users.csv [--errors 0.01] [--seed 6]

Writes FILE (users.csv, the sixteen dictionary headers in users-csv.md order, UTF-8, LF),
FILE.schools.csv (org_sis_id,name: the schools to set up before an upload) and
FILE.meta.json (shape and the mistakes injected, for the benchmark's sanity checks).

Shape of a generated district:
* ~50 schools (org_sis_ids with leading zeros: "0101", "0102", ...): elementary (KG-05),
  middle (06-08) and high (09-12) schools;
* students in cohorts of 20-32 of one school and grade; each cohort takes three classes of
  its school and grade (a student is on about three rows; ~8 % also take an elective);
* one teacher per ~80 rows: a teacher teaches one subject to three cohorts (three classes),
  and is on each class row with primary_teacher Y; ~5 % of classes have a co-teacher (N);
* two administrators per school (rows without class columns);
* userDistrictId / userStateId filled (state ids are ten-digit numbers), emails unique;
* a small share (--errors, default 1 %) of typical mistakes: blank email, bad grade,
  spreadsheet-damaged ids (1.23457E+11), amplify.com emails, unknown school (leading zero lost
  or a school that does not exist), conflicting class names, bad primary_teacher values.

Everything is vectorised (numpy + pyarrow's CSV writer): 1,000,000 rows in a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADERS = [
    "action",
    "org_sis_id",
    "userId",
    "userFirstName",
    "userLastName",
    "userEmail",
    "userRole",
    "userGrade",
    "userDistrictId",
    "userStateId",
    "classId",
    "className",
    "classGrade",
    "primary_teacher",
    "classDisplayName",
    "classSubject",
]

FIRST_NAMES = (  # noqa: SIM905
    "Olivia Liam Emma Noah Amelia Oliver Ava Elijah Sophia Mateo Isabella Lucas Mia Levi "
    "Charlotte Asher Luna James Gianna Leo Harper Grayson Evelyn Ezra Aria Luca Ella Ethan "
    "Mila Aiden Layla Wyatt Nova Sebastian Sofia Jack Camila Hudson Avery Benjamin Scarlett "
    "Henry Chloe Michael Penelope Daniel Riley Theodore Zoey Kai Nora Maverick Lily Jayden "
    "Eleanor Santiago Hannah Daniela Hazel Owen Violet Carter Aurora Julian Emily Dylan Aaliyah "
    "Muhammad Ximena Jose Valentina Adrian Abigail Gabriel Madison Isaiah Hailey Angel Jasmine "
    "Nathan Paisley Andrew Kennedy Josiah Savannah Christopher Naomi Jaxon Ruby Joshua Aubrey "
    "Thomas Emilia Cameron Ivy Ryan Quinn Jordan Zoe Nicholas Stella Wei Mei Yuki Hiroshi "
    "Priya Arjun Fatima Omar Aisha Kwame Chidi Ngozi Sione Leilani Tomás Zoë Renée José "
    "Anh Minh Thanh Jean-Luc Mary-Kate D'Andre"
).split()

LAST_NAMES = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris "
    "Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly "
    "Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
    "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster "
    "O'Brien O'Connor McDonald Van-Dyke Nguyễn Tran Pham Yamamoto Okafor Mensah Kowalski "
    "Müller Søren García-López St.John Dubois Ahmed Singh Chen Wang Zhang Liu"
).split()

STREETS = (  # noqa: SIM905
    "Lincoln Washington Jefferson Roosevelt Kennedy Franklin Madison Jackson Hamilton Adams "
    "Oak Maple Cedar Pine Elm Willow Birch Aspen Sycamore Magnolia Riverside Lakeview Hillcrest "
    "Meadowbrook Sunnyside Fairview Highland Valley Prairie Brookside Westwood Eastside "
    "Northgate Southridge Parkview Greenfield Springdale Clearwater Stonebridge Harbor "
    "Liberty Heritage Pioneer Summit Horizon Discovery Unity Legacy Frontier Canyon"
).split()

GRADES = ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]
GRADE_LABEL = {"KG": "K", **{g: str(int(g)) for g in GRADES[1:]}}

# subjects taught to a cohort (three of these per cohort, rotating), and electives
ELEM_SUBJECTS = [
    ("MATH", "Math"),
    ("ELA", "English Language Arts"),
    ("SCI", "Science"),
    ("SS", "Social Studies"),
]
SEC_SUBJECTS = [
    ("MATH", "Math"),
    ("ENG", "English"),
    ("SCI", "Science"),
    ("HIST", "History"),
    ("SPAN", "Spanish"),
]
ELECTIVES = [
    ("ART", "Art"),
    ("MUS", "Music"),
    ("PE", "Physical Education"),
    ("CS", "Computer Science"),
]

DISTRICT_DOMAIN = "springfieldusd.org"
STUDENT_DOMAIN = "students.springfieldusd.org"

COHORT_MIN, COHORT_MAX = 20, 32
CLASSES_PER_COHORT = 3
COHORTS_PER_TEACHER = 3
ELECTIVE_SHARE = 0.08
CO_TEACHER_SHARE = 0.05
ADMINS_PER_SCHOOL = 2

ERROR_KINDS = {  # kind -> share of the injected mistakes
    "blank_email": 0.20,
    "bad_grade": 0.12,
    "excel_state_id": 0.14,
    "excel_user_id": 0.06,
    "amplify_email": 0.10,
    "unknown_school": 0.14,
    "class_name_conflict": 0.16,
    "bad_primary_teacher": 0.08,
}


# ---------------------------------------------------------------------------- schools
def make_schools(n_schools: int = 50) -> list[dict]:
    """n schools: 60 % elementary, 20 % middle, 20 % high; ids with leading zeros."""
    n_high = max(1, round(n_schools * 0.2))
    n_mid = max(1, round(n_schools * 0.2))
    n_elem = max(1, n_schools - n_high - n_mid)
    schools = []
    kinds = (
        [("elementary", "Elementary School", GRADES[0:6], 1.0)] * n_elem
        + [("middle", "Middle School", GRADES[6:9], 1.7)] * n_mid
        + [("high", "High School", GRADES[9:13], 2.4)] * n_high
    )
    for i, (kind, suffix, grades, weight) in enumerate(kinds):
        block = {"elementary": 1, "middle": 2, "high": 3}[kind]
        org = f"0{block}{i + 1:02d}"  # "0101", "0207", "0349" - leading zero on purpose
        name = f"{STREETS[i % len(STREETS)]} {suffix}"
        schools.append(
            {"org_sis_id": org, "name": name, "kind": kind, "grades": grades, "weight": weight}
        )
    return schools


# ---------------------------------------------------------------------------- helpers
def _s(a) -> np.ndarray:
    """An object array of python str: elementwise `+` concatenates."""
    return np.asarray(a, dtype=object)


def _zfill(nums: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(nums.astype(str), width).astype(object)


def _cat(*parts) -> np.ndarray:
    out = None
    for p in parts:
        p = p if isinstance(p, np.ndarray) else np.asarray(p, dtype=object)
        out = p if out is None else out + p
    return out


def _quote_needed(col: np.ndarray) -> np.ndarray:
    """RFC 4180 minimal quoting (like a spreadsheet's "Save as CSV"): only cells holding a
    comma, a quote or a line break are quoted."""
    arr = pa.array(col, type=pa.string())
    needs = pc.match_substring_regex(arr, r'[,"\r\n]')
    if not pc.any(needs).as_py():
        return col
    idx = np.flatnonzero(needs.to_numpy(zero_copy_only=False))
    out = col.copy()
    out[idx] = ['"' + v.replace('"', '""') + '"' for v in col[idx]]
    return out


def _write_csv(columns: dict[str, np.ndarray], path: Path, chunk: int = 200_000) -> None:
    """Write the header and rows, comma-separated, LF line ends, UTF-8, minimal quoting."""
    cols = [_quote_needed(columns[h]) for h in HEADERS]
    n = len(cols[0])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(HEADERS) + "\n")
        for start in range(0, n, chunk):
            part = [c[start : start + chunk] for c in cols]
            line = part[0]
            for c in part[1:]:
                line = line + "," + c
            fh.write("\n".join(line.tolist()))
            fh.write("\n")


# ---------------------------------------------------------------------------- generator
def generate(
    rows: int, path, error_rate: float = 0.01, seed: int = 6, n_schools: int = 50
) -> list[tuple[str, str]]:
    """Write a users.csv of exactly `rows` record rows to `path`.

    Also writes PATH.schools.csv (org_sis_id,name) and PATH.meta.json. Returns the schools as
    a list of (org_sis_id, name), i.e. what must be set up for the district before an upload.
    """
    if rows < 1:
        raise ValueError("rows must be >= 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    schools = make_schools(n_schools)

    # --- cohorts: (school, grade) pairs weighted by school size --------------------------
    pairs_school, pairs_grade, pairs_w = [], [], []
    for si, s in enumerate(schools):
        for g in s["grades"]:
            pairs_school.append(si)
            pairs_grade.append(GRADES.index(g))
            pairs_w.append(s["weight"])
    pairs_school = np.array(pairs_school)
    pairs_grade = np.array(pairs_grade)
    pairs_w = np.array(pairs_w) / np.sum(pairs_w)

    avg_cohort = (COHORT_MIN + COHORT_MAX) / 2
    rows_per_cohort = avg_cohort * (CLASSES_PER_COHORT + ELECTIVE_SHARE) + CLASSES_PER_COHORT * (
        1 + CO_TEACHER_SHARE
    )
    n_cohorts = max(1, int(np.ceil(rows / rows_per_cohort * 1.03)) + 3)
    n_cohorts = int(np.ceil(n_cohorts / COHORTS_PER_TEACHER) * COHORTS_PER_TEACHER)

    # cohorts sorted by (school, grade): teachers teach three cohorts of neighbouring groups
    pair_of_cohort = np.sort(rng.choice(len(pairs_w), size=n_cohorts, p=pairs_w))
    c_school = pairs_school[pair_of_cohort]
    c_grade = pairs_grade[pair_of_cohort]
    c_size = rng.integers(COHORT_MIN, COHORT_MAX + 1, size=n_cohorts)
    c_kind_sec = np.array([s["kind"] != "elementary" for s in schools])[c_school]

    # --- classes: cohort c, slot k (0..2) -> class id c*3+k; teacher (c//3)*3 + k ----------
    n_classes = n_cohorts * CLASSES_PER_COHORT
    cl_cohort = np.repeat(np.arange(n_cohorts), CLASSES_PER_COHORT)
    cl_slot = np.tile(np.arange(CLASSES_PER_COHORT), n_cohorts)
    cl_teacher = (cl_cohort // COHORTS_PER_TEACHER) * CLASSES_PER_COHORT + cl_slot
    # the subject of slot k rotates with the teacher's group, so one teacher = one subject
    grp = cl_cohort // COHORTS_PER_TEACHER
    elem_idx = (grp + cl_slot) % len(ELEM_SUBJECTS)
    sec_idx = (grp + cl_slot) % len(SEC_SUBJECTS)
    cl_sec = c_kind_sec[cl_cohort]
    subj_code = np.where(
        cl_sec,
        _s([c for c, _ in SEC_SUBJECTS])[sec_idx],
        _s([c for c, _ in ELEM_SUBJECTS])[elem_idx],
    )
    subj_name = np.where(
        cl_sec,
        _s([n for _, n in SEC_SUBJECTS])[sec_idx],
        _s([n for _, n in ELEM_SUBJECTS])[elem_idx],
    )
    n_pairs = len(pairs_w)

    org_ids = _s([s["org_sis_id"] for s in schools])
    grade_codes = _s(GRADES)
    grade_labels = _s([GRADE_LABEL[g] for g in GRADES])

    # --- people: students, teachers, administrators -------------------------------------
    n_students = int(c_size.sum())
    st_cohort = np.repeat(np.arange(n_cohorts), c_size)
    n_teachers = int(cl_teacher.max()) + 1
    n_admins = ADMINS_PER_SCHOOL * len(schools)
    n_people = n_students + n_teachers + n_admins
    # person index: [students | teachers | admins]
    first = _s(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n_people)]
    last = _s(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n_people)]

    # ids: students "1" + 8 digits (a 9-digit number), teachers "T" + 6 digits, admins "A" + 4
    stu_num = 100000000 + rng.permutation(n_students * 3)[:n_students] * 7 + 12345
    stu_id = stu_num.astype(str).astype(object)
    tea_id = _cat("T", _zfill(np.arange(1, n_teachers + 1) + 500, 6))
    adm_id = _cat("A", _zfill(np.arange(1, n_admins + 1) + 10, 4))
    user_id = np.concatenate([stu_id, tea_id, adm_id])

    # secondary ids: district id "SD" + digits; state id = ten-digit number (spreadsheets hate it)
    district_id = _cat(
        np.where(np.arange(n_people) < n_students, "SD", "EMP"), _zfill(np.arange(n_people) + 1, 7)
    )
    state_num = 4000000000 + rng.permutation(np.arange(n_people) * 13 + 7)
    state_id = state_num.astype(str).astype(object)
    # staff often have no state id in the file
    staff_no_state = (np.arange(n_people) >= n_students) & (rng.random(n_people) < 0.4)
    state_id[staff_no_state] = ""

    # emails: unique by construction (the id is part of the local part)
    lower_first = np.char.lower(first.astype(str))
    lower_last = np.char.lower(last.astype(str))
    ascii_first = _ascii(lower_first)
    ascii_last = _ascii(lower_last)
    is_student_p = np.arange(n_people) < n_students
    email = np.where(
        is_student_p,
        _cat(_first_char(ascii_first), ascii_last, user_id, "@" + STUDENT_DOMAIN),
        _cat(
            ascii_first,
            ".",
            ascii_last,
            ".",
            np.char.lower(user_id.astype(str)).astype(object),
            "@" + DISTRICT_DOMAIN,
        ),
    )
    role = np.where(is_student_p, "student", "teacher").astype(object)
    role[n_students + n_teachers :] = "administrator"

    # --- rows ----------------------------------------------------------------------------
    # student class rows: each student x the three classes of its cohort
    s_rows_person = np.repeat(np.arange(n_students), CLASSES_PER_COHORT)
    s_rows_class = st_cohort[s_rows_person] * CLASSES_PER_COHORT + np.tile(
        np.arange(CLASSES_PER_COHORT), n_students
    )
    s_rows_primary = np.full(len(s_rows_person), "", dtype=object)

    # electives: ~8 % of students also take an elective; one elective section per 12 cohorts
    # of a (school, grade) pair (~25 students), taught by a teacher of the first cohort
    first_cohort_of_pair = np.full(n_pairs, -1)
    uniq, first_idx = np.unique(pair_of_cohort, return_index=True)
    first_cohort_of_pair[uniq] = first_idx
    rank_in_pair = np.arange(n_cohorts) - first_cohort_of_pair[pair_of_cohort]
    group_key = pair_of_cohort * 1_000_000 + rank_in_pair // 12
    g_keys, g_first_cohort, cohort_group = np.unique(
        group_key, return_index=True, return_inverse=True
    )
    elect_students = np.flatnonzero(rng.random(n_students) < ELECTIVE_SHARE)
    used_groups = np.unique(cohort_group[st_cohort[elect_students]])
    n_el = len(used_groups)
    el_of_group = np.full(len(g_keys), -1)
    el_of_group[used_groups] = np.arange(n_el)
    e_class = n_classes + el_of_group[cohort_group[st_cohort[elect_students]]]
    el_cohort = g_first_cohort[used_groups]
    el_pair = pair_of_cohort[el_cohort]
    el_section = rank_in_pair[el_cohort] // 12 + 1

    # teacher rows: each class once with Y, co-teachers on ~5 % of classes with N
    t_rows_class = np.arange(n_classes)
    t_rows_person = n_students + cl_teacher
    t_rows_primary = np.full(n_classes, "Y", dtype=object)
    co = np.flatnonzero(rng.random(n_classes) < CO_TEACHER_SHARE)
    co_teacher = n_students + (cl_teacher[co] + CLASSES_PER_COHORT) % n_teachers
    el_teacher = n_students + cl_teacher[el_cohort * CLASSES_PER_COHORT]

    # admin rows: no class
    a_rows_person = n_students + n_teachers + np.arange(n_admins)
    a_school = np.repeat(np.arange(len(schools)), ADMINS_PER_SCHOOL)

    # Build per-row arrays: person, class (-1 = none), primary flag, cohort (-1 = admin)
    person = np.concatenate(
        [t_rows_person, co_teacher, el_teacher, s_rows_person, elect_students, a_rows_person]
    )
    klass = np.concatenate(
        [
            t_rows_class,
            co,
            n_classes + np.arange(n_el),
            s_rows_class,
            e_class,
            np.full(n_admins, -1),
        ]
    )
    primary = np.concatenate(
        [
            t_rows_primary,
            np.full(len(co), "N", dtype=object),
            np.full(n_el, "Y", dtype=object),
            s_rows_primary,
            np.full(len(elect_students), "", dtype=object),
            np.full(n_admins, "", dtype=object),
        ]
    )
    row_cohort = np.concatenate(
        [
            cl_cohort,
            cl_cohort[co],
            np.full(n_el, -1),
            st_cohort[s_rows_person],
            st_cohort[elect_students],
            np.full(n_admins, -1),
        ]
    )
    # class attributes, extended with the electives
    all_cl_school = np.concatenate([c_school[cl_cohort], pairs_school[el_pair]])
    all_cl_grade = np.concatenate([c_grade[cl_cohort], pairs_grade[el_pair]])
    e_idx = (el_pair + el_section) % len(ELECTIVES)
    all_subj_code = np.concatenate([subj_code, _s([c for c, _ in ELECTIVES])[e_idx]])
    all_subj_name = np.concatenate([subj_name, _s([n for _, n in ELECTIVES])[e_idx]])
    all_cl_teacher = np.concatenate([cl_teacher, el_teacher - n_students])
    all_section = np.concatenate([rank_in_pair[cl_cohort] + 1, el_section])

    row_school = np.where(klass >= 0, all_cl_school[np.maximum(klass, 0)], 0)
    row_school[len(person) - n_admins :] = a_school

    # Exactly `rows` rows: cohorts were sized to overshoot; keep whole cohorts in a random
    # order (admins and elective teachers first) so the cut falls on random schools.
    cohort_rank = rng.permutation(n_cohorts)
    prio = np.where(row_cohort >= 0, cohort_rank[np.maximum(row_cohort, 0)], -1)
    keep = np.argsort(prio, kind="stable")[:rows]
    if len(keep) < rows:
        raise RuntimeError("internal: generated fewer rows than requested")
    person, klass, primary, row_school = person[keep], klass[keep], primary[keep], row_school[keep]

    # Order like an SIS export: by school, then class; a class's staff rows before its
    # students; administrators (no class) first in their school.
    is_staff_row = person >= n_students
    order = np.lexsort((person, ~is_staff_row, klass, row_school))
    person, klass, primary, row_school = (
        person[order],
        klass[order],
        primary[order],
        row_school[order],
    )

    has_class = klass >= 0
    k = np.maximum(klass, 0)
    st_grade_idx = np.full(n_people, -1)
    st_grade_idx[:n_students] = c_grade[st_cohort]

    # class id: "<org>-<SUBJ><grade>-<section>" e.g. "0101-MATH03-02"; names; display names
    cls_org = org_ids[all_cl_school]
    cls_grade = grade_codes[all_cl_grade]
    cls_id = _cat(cls_org, "-", all_subj_code, cls_grade, "-", _zfill(all_section, 2))
    teacher_last = last[n_students + all_cl_teacher]
    cls_name = _cat(
        all_subj_name,
        " ",
        grade_labels[all_cl_grade],
        " - Section ",
        all_section.astype(str).astype(object),
    )
    cls_display = _cat(all_subj_name, " ", grade_labels[all_cl_grade], " (", teacher_last, ")")
    # a few combination classes span two grades: "03,04" (quoted by the CSV writer)
    cls_grade_cell = cls_grade.copy()
    combo = (rng.random(len(cls_grade)) < 0.01) & (all_cl_grade < len(GRADES) - 1)
    cls_grade_cell[combo] = _cat(cls_grade[combo], ",", grade_codes[all_cl_grade[combo] + 1])

    empty = np.full(rows, "", dtype=object)
    cols: dict[str, np.ndarray] = {
        "action": empty,
        "org_sis_id": org_ids[row_school],
        "userId": user_id[person],
        "userFirstName": first[person],
        "userLastName": last[person],
        "userEmail": email[person],
        "userRole": role[person],
        "userGrade": np.where(person < n_students, grade_codes[st_grade_idx[person]], ""),
        "userDistrictId": district_id[person],
        "userStateId": state_id[person],
        "classId": np.where(has_class, cls_id[k], ""),
        "className": np.where(has_class, cls_name[k], ""),
        "classGrade": np.where(has_class, cls_grade_cell[k], ""),
        "primary_teacher": primary,
        "classDisplayName": np.where(has_class, cls_display[k], ""),
        "classSubject": np.where(has_class, all_subj_name[k], ""),
    }
    cols = {h: np.asarray(v, dtype=object) for h, v in cols.items()}

    injected = _inject_errors(cols, rng, error_rate, person, klass, n_students)

    _write_csv(cols, path)
    school_list = [(s["org_sis_id"], s["name"]) for s in schools]
    with open(str(path) + ".schools.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["org_sis_id", "name"])
        w.writerows(school_list)
    in_file = np.unique(person)
    meta = {
        "rows": rows,
        "seed": seed,
        "error_rate": error_rate,
        "schools": len(schools),
        "students": int(np.sum(in_file < n_students)),
        "teachers": int(np.sum((in_file >= n_students) & (in_file < n_students + n_teachers))),
        "administrators": int(np.sum(in_file >= n_students + n_teachers)),
        "classes": len(np.unique(klass[has_class])),
        "enrollments": int(has_class.sum()),
        "injected_errors": injected,
    }
    with open(str(path) + ".meta.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return school_list


def _ascii(a: np.ndarray) -> np.ndarray:
    """Lower-case names -> ascii local-part material (drop apostrophes, accents, dots)."""
    uniq, inv = np.unique(a, return_inverse=True)
    import unicodedata

    conv = []
    for u in uniq:
        s = unicodedata.normalize("NFKD", str(u)).encode("ascii", "ignore").decode()
        conv.append("".join(ch for ch in s if ch.isalnum() or ch == "-"))
    return np.asarray(conv, dtype=object)[inv]


def _first_char(a: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(a.astype(str), return_inverse=True)
    return np.asarray([u[:1] for u in uniq], dtype=object)[inv]


def _excel(num_str: np.ndarray) -> np.ndarray:
    """'123456789012' -> '1.23457E+11' (what a spreadsheet shows for a long number)."""
    return np.asarray([_excel_one(s) for s in num_str], dtype=object)


def _excel_one(s: str) -> str:
    mant, exp = f"{float(s):.5E}".split("E")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}E+{int(exp):02d}"


def _inject_errors(cols, rng, rate, person, klass, n_students) -> dict[str, int]:
    """Typical mistakes in ~rate of the rows. Person-level mistakes hit every row of the person
    (the SIS record is wrong), the others a single row. Returns {kind: rows touched}."""
    n = len(person)
    counts: dict[str, int] = {}
    if rate <= 0:
        return counts
    n_people = int(person.max()) + 1
    for kind, share in ERROR_KINDS.items():
        p = rate * share
        if kind in ("blank_email", "bad_grade", "excel_state_id", "excel_user_id", "amplify_email"):
            if kind == "bad_grade":
                hit_people = (rng.random(n_people) < p) & (np.arange(n_people) < n_students)
            else:
                hit_people = rng.random(n_people) < p
            rows = np.flatnonzero(hit_people[person])
            if kind == "blank_email":
                cols["userEmail"][rows] = ""
            elif kind == "bad_grade":
                bad = _s(["Grade 3", "3rd", "14", "K5", "Fifth", "G7", "Senior"])
                cols["userGrade"][rows] = bad[person[rows] % len(bad)]
            elif kind == "excel_state_id":
                rows = rows[cols["userStateId"][rows] != ""]
                cols["userStateId"][rows] = _excel(cols["userStateId"][rows])
            elif kind == "excel_user_id":
                rows = rows[person[rows] < n_students]
                # the 9-digit student number, padded as districts do to 12 digits, then Excel'd
                cols["userId"][rows] = _excel(_cat(cols["userId"][rows], "000"))
            elif kind == "amplify_email":
                local = _s(
                    [e.split("@", 1)[0] if e else "teacher" for e in cols["userEmail"][rows]]
                )
                cols["userEmail"][rows] = _cat(local, "@amplify.com")
        else:
            rows = np.flatnonzero(rng.random(n) < p)
            if kind == "unknown_school":
                orgs = cols["org_sis_id"][rows]
                lost = _s([o.lstrip("0") for o in orgs])  # Excel dropped the leading zero
                cols["org_sis_id"][rows] = np.where(np.arange(len(rows)) % 3 == 2, "0999", lost)
            elif kind == "class_name_conflict":
                # one row of ~rate*share of the classes carries an old name of its class
                n_cls = int(klass.max()) + 1
                hit = np.flatnonzero(rng.random(n_cls) < p)
                cand = np.flatnonzero(np.isin(klass, hit))
                _, last = np.unique(klass[cand][::-1], return_index=True)
                rows = cand[::-1][last]  # the class's last row (a student's)
                cols["className"][rows] = _cat(cols["className"][rows], " (old)")
            elif kind == "bad_primary_teacher":
                rows = rows[(klass[rows] >= 0) & (person[rows] >= n_students)]
                cols["primary_teacher"][rows] = _s(["Yes please", "X", "primary"])[
                    np.arange(len(rows)) % 3
                ]
        counts[kind] = len(rows)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--errors", type=float, default=0.01, help="share of rows with a mistake")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--schools", type=int, default=50)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    schools = generate(args.rows, args.output, args.errors, args.seed, args.schools)
    dt = time.perf_counter() - t0
    print(
        f"wrote {args.rows:,} rows to {args.output} ({len(schools)} schools, "
        f"{Path(args.output).stat().st_size / 1e6:.1f} MB) in {dt:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
