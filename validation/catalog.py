"""The catalog of every issue code rosterbot reports.

One row per code: the group (the report column it belongs to, which is also the
knowledge-base error group `errors.<group>`), the severity, what the issue rejects
(its scope), a one-line title, the message template and how to fix it.  Checks,
the error report, the Slack summary and the knowledge base all read this table;
a code string is never typed anywhere else as a literal rule.

Message templates may use ``{column}``, ``{value}`` and ``{detail}`` (an extra
phrase a check supplies, e.g. a "did you mean" suggestion).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Scope(StrEnum):
    """What an error on a row rejects (users-csv.md section 5)."""

    FILE = "file"  # the whole upload fails
    ROW = "row"  # the whole row (org_sis_id and action errors)
    FAILED = "failed"  # the whole row, counted only in rows.rejected
    PERSON = "person"  # the person and the enrollment
    CLASS = "class"  # the class and the enrollment
    ENROLLMENT = "enrollment"  # only the enrollment
    NOTE = "note"  # warnings: nothing is rejected
    DEMOGRAPHICS = "demographics"  # the student's demographics row


@dataclass(frozen=True)
class Code:
    code: str
    group: str
    severity: Severity
    scope: Scope
    title: str
    message: str
    fix: str

    def render(self, column: str = "", value: str = "", detail: str = "") -> str:
        text = self.message.format(column=column, value=value, detail=detail).strip()
        return text.replace("?.", "?")


E, W = Severity.ERROR, Severity.WARNING

_ROWS: list[tuple[str, str, Severity, Scope, str, str, str]] = [
    # --- file level -------------------------------------------------------------------------
    ("FILE_EMPTY", "file", E, Scope.FILE, "The file is empty",
     "The file has no content or no header line.",
     "Export the roster again and make sure the first line holds the column headers."),
    ("FILE_NOT_CSV", "file", E, Scope.FILE, "The file is not a CSV file",
     "The file is {detail}, not a CSV text file.",
     "Open it in your spreadsheet program and use File > Save As > 'CSV UTF-8 (Comma delimited)', "
     "then upload the .csv file."),
    ("FILE_ENCODING", "file", E, Scope.FILE, "The file's text encoding cannot be read",
     "The file is not UTF-8, UTF-16 or Windows-1252 text.",
     "Save the file as 'CSV UTF-8 (Comma delimited)' and upload it again."),
    ("FILE_ENCODING_GUESSED", "file", W, Scope.NOTE, "The file was not saved as UTF-8",
     "The file was not UTF-8; it was read as {detail}.",
     "Check names with accents in the results; next time save as 'CSV UTF-8 (Comma delimited)'."),
    ("FILE_TOO_LARGE", "file", E, Scope.FILE, "The file is over the size limit",
     "The file is {detail}, over the upload limit.",
     "Split the file by school into several smaller files and upload them one at a time."),
    ("FILE_NO_ROWS", "file", E, Scope.FILE, "The file has headers but no rows",
     "The file has a header line but no rows with data.",
     "Add one row per person (and class) below the header line, or upload the right file."),
    ("REMOVALS_NEED_CONFIRMATION", "file", E, Scope.FILE,
     "The upload would remove a large share of the roster",
     "Nothing was applied because this file would remove {detail}.",
     "If these removals are intended, confirm them (the Confirm button in Slack, or "
     "--confirm-removals on the command line); otherwise fix the REMOVE/DEACTIVATE rows."),
    # --- headers --------------------------------------------------------------------------------
    ("HEADER_MISSING", "header", E, Scope.FILE, "A required column header is missing",
     "The required column '{column}' is missing{detail}.",
     "Add the missing column with exactly the header named (headers are case-sensitive)."),
    ("HEADER_CASE", "header", E, Scope.FILE, "A header has the wrong letter case or spaces",
     "The header '{value}' must be spelled exactly '{column}'.",
     "Rename the header to the spelling shown: exact letter case, no spaces around it."),
    ("HEADER_UNKNOWN", "header", E, Scope.FILE, "A column header is not recognised",
     "The header '{value}' is not in the data dictionary{detail}.",
     "Rename the column to one of the dictionary headers, or delete the column."),
    ("HEADER_DUPLICATE", "header", E, Scope.FILE, "The same header appears twice",
     "The header '{value}' appears more than once.",
     "Keep one column with that header and delete or rename the other."),
    ("HEADER_BLANK", "header", E, Scope.FILE, "A column has no header",
     "Column {detail} has an empty header.",
     "Give the column a header, or delete it (often a stray comma at the end of the header line)."),
    # --- action ---------------------------------------------------------------------------------
    ("ACTION_INVALID", "action", E, Scope.ROW, "The action is not recognised",
     "The action '{value}' is not one of blank, REMOVE-CLASS, REMOVE-ENROLLMENT or "
     "DEACTIVATE-USER{detail}.",
     "Leave action blank to add or update, or use REMOVE-CLASS, REMOVE-ENROLLMENT or "
     "DEACTIVATE-USER."),
    ("ACTION_NEEDS_CLASS", "action", E, Scope.ROW, "A remove action has no classId",
     "The action '{value}' needs a classId.",
     "Put the class's classId on the row, or use DEACTIVATE-USER to remove a person."),
    ("ACTION_CLASS_NOT_FOUND", "action", E, Scope.ROW, "The class to remove does not exist",
     "The class '{value}' is not in this district's roster, so it cannot be removed.",
     "Check the classId (letter case, leading zeros), or delete the row if the class is "
     "already gone."),
    ("ACTION_USER_NOT_FOUND", "action", E, Scope.ROW, "The person to remove does not exist",
     "The person '{value}' is not in this district's roster.",
     "Check the userId (letter case, leading zeros), or delete the row."),
    ("ACTION_ENROLLMENT_NOT_FOUND", "action", W, Scope.NOTE, "The enrollment to remove does not exist",
     "The person '{value}' is not enrolled in that class, so there was nothing to remove.",
     "No change needed; delete the row next time."),
    # --- org_sis_id -----------------------------------------------------------------------------
    ("ORG_REQUIRED", "org_sis_id", E, Scope.ROW, "The school ID is blank",
     "org_sis_id is blank.",
     "Fill in the school's org_sis_id, exactly as set up for your district."),
    ("ORG_NOT_FOUND", "org_sis_id", E, Scope.ROW, "The school is not set up for the district",
     "No school '{value}' is set up for this district{detail}.",
     "Use the org_sis_id of a school set up for your district (ask support to add a new school)."),
    ("ORG_EXCEL", "org_sis_id", E, Scope.ROW, "A spreadsheet turned the school ID into a number",
     "The school ID '{value}' was changed by a spreadsheet into scientific notation.",
     "Format the column as Text in your spreadsheet, retype the IDs, and save as CSV UTF-8."),
    ("ORG_CLASS_MISMATCH", "org_sis_id", E, Scope.ROW, "The class belongs to a different school",
     "{detail}.",
     "Use one org_sis_id for every row of a class, the school the class belongs to."),
    # --- userId ---------------------------------------------------------------------------------
    ("USERID_REQUIRED", "userId", E, Scope.PERSON, "The user ID is blank",
     "userId is blank.",
     "Fill in the person's userId (their ID in your student information system)."),
    ("USERID_INVALID", "userId", E, Scope.PERSON, "The ID has characters that are not allowed",
     "{column} '{value}' {detail}.",
     "Use only letters, digits, '-', '_' and '.', at most 64 characters."),
    ("USERID_EXCEL", "userId", E, Scope.PERSON, "A spreadsheet turned the ID into a number",
     "{column} '{value}' was changed by a spreadsheet into scientific notation.",
     "Format the column as Text in your spreadsheet, retype the IDs, and save as CSV UTF-8."),
    ("USER_CONFLICT", "userId", E, Scope.PERSON, "Rows for the same person disagree",
     "Rows for userId '{detail}' give different values for {column}.",
     "Make every row of this person carry the same value (or leave it blank on all but one)."),
    ("USERID_ROLE_CHANGE", "userId", E, Scope.PERSON, "A student cannot become staff or the reverse",
     "The userId '{value}' is stored as {detail}; a userId cannot switch between student and "
     "staff.",
     "Use a new userId for the new role, or correct userRole."),
    ("USERID_CHANGED", "userId", W, Scope.NOTE, "The person's ID was changed",
     "The person with this email had the userId '{detail}'; it is now '{value}'.",
     "No action needed if the ID change is intended; otherwise upload the old userId."),
    # --- names ----------------------------------------------------------------------------------
    ("FIRSTNAME_REQUIRED", "userFirstName", E, Scope.PERSON, "The first name is blank",
     "userFirstName is blank.", "Fill in the person's first name."),
    ("LASTNAME_REQUIRED", "userLastName", E, Scope.PERSON, "The last name is blank",
     "userLastName is blank.", "Fill in the person's last name."),
    ("NAME_TOO_LONG", "userFirstName", E, Scope.PERSON, "A name is over 100 characters",
     "{column} is {detail} characters long, over the limit of 100.",
     "Shorten the name to at most 100 characters."),
    # --- userEmail ------------------------------------------------------------------------------
    ("EMAIL_REQUIRED", "userEmail", E, Scope.PERSON, "The email is blank",
     "userEmail is blank.", "Fill in the person's email address."),
    ("EMAIL_INVALID", "userEmail", E, Scope.PERSON, "The email is not a valid address",
     "The email '{value}' is not a valid email address{detail}.",
     "Write the address as name@domain.org with no spaces and exactly one @."),
    ("EMAIL_AMPLIFY_DOMAIN", "userEmail", E, Scope.PERSON, "Vendor email addresses are not accepted",
     "The email '{value}' is an Amplify address; staff and students need their district "
     "address.",
     "Use the person's school or district email address."),
    ("EMAIL_DUPLICATE", "userEmail", E, Scope.PERSON, "Two people in the file share an email",
     "The email '{value}' is used by more than one userId in this file ({detail}).",
     "Give each person their own email, or use one userId if they are the same person."),
    ("EMAIL_TAKEN", "userEmail", E, Scope.PERSON, "The email belongs to someone else already",
     "The email '{value}' already belongs to another person{detail}.",
     "Check the email; if it is the same person, use their existing userId."),
    # --- userRole -------------------------------------------------------------------------------
    ("ROLE_INVALID", "userRole", E, Scope.PERSON, "The role is not recognised",
     "The role '{value}' is not student, teacher or administrator.",
     "Use student, teacher or administrator."),
    ("ROLE_NOT_ALLOWED", "userRole", E, Scope.PERSON,
     "Students come from the district's rostering provider",
     "Students cannot be uploaded here: this district's students come from {detail}.",
     "Remove student rows; add or fix students in your rostering provider's roster instead."),
    # --- userGrade ------------------------------------------------------------------------------
    ("USERGRADE_REQUIRED", "userGrade", E, Scope.PERSON, "A student has no grade",
     "userGrade is blank on a student row.",
     "Fill in the student's grade: IT PR PK TK KG 01-13 PS UG Other."),
    ("USERGRADE_INVALID", "userGrade", E, Scope.PERSON, "The grade is not recognised",
     "The grade '{value}' is not a grade code.",
     "Use one of: IT PR PK TK KG 01 02 03 04 05 06 07 08 09 10 11 12 13 PS UG Other."),
    ("USERGRADE_NORMALIZED", "userGrade", W, Scope.NOTE, "The grade was written a different way",
     "The grade '{value}' was read as '{detail}'.",
     "No action needed; next time write the grade code shown (e.g. KG, 05, PK)."),
    ("USERGRADE_IGNORED", "userGrade", W, Scope.NOTE, "Staff do not have a grade",
     "The grade '{value}' on a staff row was ignored.",
     "Leave userGrade blank for teachers and administrators."),
    # --- classId --------------------------------------------------------------------------------
    ("CLASSID_REQUIRED", "classId", E, Scope.CLASS, "Class details without a classId",
     "The row has class details but no classId.",
     "Fill in the classId, or clear the class columns if the row is only about the person."),
    ("CLASSID_INVALID", "classId", E, Scope.CLASS, "The class ID has characters that are not allowed",
     "classId '{value}' {detail}.",
     "Use only letters, digits, '-', '_' and '.', at most 64 characters."),
    ("CLASSID_EXCEL", "classId", E, Scope.CLASS, "A spreadsheet turned the class ID into a number",
     "classId '{value}' was changed by a spreadsheet into scientific notation.",
     "Format the column as Text in your spreadsheet, retype the IDs, and save as CSV UTF-8."),
    # --- className ------------------------------------------------------------------------------
    ("CLASSNAME_REQUIRED", "className", E, Scope.CLASS, "The class has no name",
     "className is blank for class '{detail}'.",
     "Fill in the class name on every row of the class."),
    ("CLASSNAME_CONFLICT", "className", E, Scope.CLASS, "Rows for one class give different names",
     "Rows for class '{detail}' give different class names.",
     "Use exactly the same className on every row of the class."),
    ("CLASSNAME_TOO_LONG", "className", E, Scope.CLASS, "The class name is over 255 characters",
     "className is {detail} characters long, over the limit of 255.",
     "Shorten the class name to at most 255 characters."),
    # --- classGrade -----------------------------------------------------------------------------
    ("CLASSGRADE_REQUIRED", "classGrade", E, Scope.CLASS, "The class has no grade",
     "classGrade is blank for class '{detail}'.",
     "Fill in the class grade, or several in quotes like \"03,04\"."),
    ("CLASSGRADE_INVALID", "classGrade", E, Scope.CLASS, "The class grade is not recognised",
     "The class grade '{value}' is not a grade code{detail}.",
     "Use grade codes (IT PR PK TK KG 01-13 PS UG Other), several separated by commas in one "
     "quoted cell."),
    ("CLASSGRADE_CONFLICT", "classGrade", E, Scope.CLASS, "Rows for one class give different grades",
     "Rows for class '{detail}' give different class grades.",
     "Use exactly the same classGrade on every row of the class."),
    ("CLASSGRADE_NORMALIZED", "classGrade", W, Scope.NOTE, "The class grade was written a different way",
     "The class grade '{value}' was read as '{detail}'.",
     "No action needed; next time write the grade codes shown (e.g. KG, 05, PK)."),
    # --- primary_teacher ------------------------------------------------------------------------
    ("PRIMARY_TEACHER_INVALID", "primary_teacher", E, Scope.ENROLLMENT,
     "primary_teacher is not Y or N",
     "primary_teacher '{value}' is not Y or N.",
     "Use Y for the class's primary teacher and N (or blank) for everyone else."),
    ("PRIMARY_TEACHER_NOT_STAFF", "primary_teacher", E, Scope.ENROLLMENT,
     "A student is marked as primary teacher",
     "A student cannot be a primary teacher (primary_teacher is '{value}').",
     "Set primary_teacher to N or blank on student rows."),
    ("PRIMARY_TEACHER_NO_CLASS", "primary_teacher", W, Scope.NOTE,
     "primary_teacher without a class",
     "primary_teacher is '{value}' but the row has no classId, so it was ignored.",
     "Add the classId, or clear primary_teacher."),
    # --- class (after apply) --------------------------------------------------------------------
    ("CLASS_NO_PRIMARY_TEACHER", "class", W, Scope.NOTE, "The class has no primary teacher",
     "Class '{value}' has no primary teacher.",
     "Add a row for the class's teacher with primary_teacher Y."),
    ("CLASS_MULTIPLE_PRIMARY", "class", W, Scope.NOTE, "The class has more than one primary teacher",
     "Class '{value}' has {detail} primary teachers; the first assigned is the official one.",
     "Set primary_teacher Y for one teacher only, N for co-teachers."),
    ("CLASS_SIZE", "class", W, Scope.NOTE, "The class is larger than recommended",
     "Class '{value}' has {detail} active students, over the recommended maximum of 80.",
     "Split the class into sections of at most 80 students if you can."),
    # --- Failed ---------------------------------------------------------------------------------
    ("ROW_FIELD_COUNT", "Failed", E, Scope.FAILED, "The row has the wrong number of fields",
     "The row has {value} fields but the header has {detail}.",
     "Check for extra or missing commas; put quotes around values that contain commas."),
    ("FAILED", "Failed", E, Scope.FAILED, "The upload could not be saved",
     "The file passed validation but could not be saved: {detail}.",
     "Upload the file again; if it fails again, contact support with this report."),
    # --- demographics.csv -----------------------------------------------------------------------
    ("DEMO_USERID_REQUIRED", "demographics", E, Scope.DEMOGRAPHICS, "The demographics row has no userId",
     "userId is blank.", "Fill in the student's userId, as in users.csv."),
    ("DEMO_USER_NOT_FOUND", "demographics", E, Scope.DEMOGRAPHICS, "The student is not in the roster",
     "No person '{value}' is in this district's roster.",
     "Upload the student in users.csv first (or in the same message), or fix the userId."),
    ("DEMO_NOT_STUDENT", "demographics", E, Scope.DEMOGRAPHICS, "Demographics are for students only",
     "The person '{value}' is staff; demographics are kept for students only.",
     "Delete the row, or use the student's userId."),
    ("DEMO_DUPLICATE", "demographics", E, Scope.DEMOGRAPHICS, "The student has more than one row",
     "userId '{value}' appears on more than one row.",
     "Keep one row per student."),
    ("DEMO_VALUE_INVALID", "demographics", E, Scope.DEMOGRAPHICS, "A demographics value is not accepted",
     "{column} '{value}' is not accepted; use {detail}.",
     "Use one of the accepted values for the column (see the data dictionary)."),
    ("DEMO_DATE_INVALID", "demographics", E, Scope.DEMOGRAPHICS, "The birth date is not valid",
     "birthDate '{value}' {detail}.",
     "Write the date as YYYY-MM-DD, a real date between 1900 and today."),
    ("DEMO_VALUE_NORMALIZED", "demographics", W, Scope.NOTE, "A demographics value was normalised",
     "{column} '{value}' was read as '{detail}'.",
     "No action needed; next time write the value shown (Y/N, M/F/X, YYYY-MM-DD)."),
    ("DEMO_RACE_INCONSISTENT", "demographics", W, Scope.NOTE, "The race flags do not add up",
     "demographicRaceTwoOrMoreRaces is '{value}' but {detail}.",
     "Set demographicRaceTwoOrMoreRaces to Y exactly when two or more race columns are Y."),
]

CATALOG: dict[str, Code] = {row[0]: Code(*row) for row in _ROWS}

#: Column groups of the knowledge base, in the order product.md lists them.
ERROR_GROUPS: tuple[str, ...] = (
    "action", "org_sis_id", "userId", "userFirstName", "userLastName", "userEmail", "userRole",
    "userGrade", "classId", "className", "classGrade", "primary_teacher", "class", "header",
    "file", "Failed", "demographics",
)


def codes_in_group(group: str) -> list[str]:
    """Codes that belong to an error group (NAME_TOO_LONG belongs to both name columns)."""
    found = [c.code for c in CATALOG.values() if c.group == group]
    if group == "userLastName":
        found.append("NAME_TOO_LONG")
    return found


def code(name: str) -> Code:
    """Look a code up; a typo in a code name fails loudly at import or test time."""
    return CATALOG[name]
