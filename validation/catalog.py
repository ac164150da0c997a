"""The catalog of every issue code rosterbot reports.

One row per code: the group (the report column it belongs to, which is also the
knowledge-base error group `errors.<group>`), the severity, what the issue rejects
(its scope), a one-line title, the message template and how to fix it.  Checks,
the error report, the Slack summary and the knowledge base all read this table;
a code string is never typed anywhere else as a literal rule.

Message templates may use ``{column}``, ``{value}`` and ``{detail}`` (an extra
phrase a check supplies, e.g. a "did you mean" suggestion), and ``{others}``: the values a
conflict found, ": 'Math 5', 'Math five'" (empty when the check gave none; `with_values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from validation.dictionary import CLASS_SIZE_MAX, CLASSNAME_MAX, ID_MAX, NAME_MAX


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
    #: Further knowledge-base error groups the code belongs to (a name code serves both names).
    also_in: tuple[str, ...] = ()

    def render(self, column: str = "", value: str = "", detail: str = "") -> str:
        # a conflict's detail carries the differing values after OTHERS (see `with_values`)
        detail, _, others = str(detail).partition(OTHERS)
        others = f": {others}" if others else ""
        text = self.message.format(column=column, value=value, detail=detail, others=others).strip()
        return text.replace("?.", "?")


#: separates a detail from the values a conflict names ("M101" + OTHERS + "'Math 5', 'Math')
OTHERS = "\x1f"


def with_values(details: list[str], values: list[str]) -> list[str]:
    """Details that also carry the differing values, for templates with `{others}`."""
    return [f"{d}{OTHERS}{v}" if v else d for d, v in zip(details, values)]


E, W = Severity.ERROR, Severity.WARNING

_EXCEL_FIX = (
    "Format the ID columns as Text in your spreadsheet, retype the real IDs (for a date, "
    "the ID the message names), and save as CSV UTF-8; or download the roster and start from it."
)
_ZEROS_FIX = (
    "Put the stored ID back (with its leading zeros): format the ID column as Text in your "
    "spreadsheet before typing, or open the CSV through Data > From Text/CSV with the column "
    "as Text. Nothing was renamed or created for this row."
)

CODES: tuple[Code, ...] = (
    # --- file level -------------------------------------------------------------------------
    Code(
        code="FILE_EMPTY",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file is empty",
        message="The file has no content or no header line.",
        fix="Export the roster again and make sure the first line holds the column headers.",
    ),
    Code(
        code="FILE_NOT_CSV",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file is not a CSV file",
        message="The file is {detail}, not a CSV text file.",
        fix="Open it in your spreadsheet program and use File > Save As > 'CSV UTF-8 (Comma delimited)', "
        "then upload the .csv file.",
    ),
    Code(
        code="FILE_ENCODING",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file's text encoding cannot be read",
        message="The file is not UTF-8, UTF-16 or Windows-1252 text.",
        fix="Save the file as 'CSV UTF-8 (Comma delimited)' and upload it again.",
    ),
    Code(
        code="FILE_ENCODING_GUESSED",
        group="file",
        severity=W,
        scope=Scope.NOTE,
        title="The file was not saved as UTF-8",
        message="The file was not UTF-8; it was read as {detail}.",
        fix="Check names with accents in the results; next time save as 'CSV UTF-8 (Comma delimited)'.",
    ),
    Code(
        code="FILE_TOO_LARGE",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file is over the size limit",
        message="The file is {detail}, over the upload limit.",
        fix="Split the file by school into several smaller files and upload them one at a time.",
    ),
    Code(
        code="FILE_NO_ROWS",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file has headers but no rows",
        message="The file has a header line but no rows with data.",
        fix="Add one row per person (and class) below the header line, or upload the right file.",
    ),
    Code(
        code="REMOVALS_NEED_CONFIRMATION",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The upload would remove a large share of the roster",
        message="This file would remove {detail}.",
        fix="If these removals are intended, confirm them (the Confirm button in Slack, or "
        "--confirm-removals on the command line); otherwise fix the REMOVE/DEACTIVATE rows.",
    ),
    Code(
        code="ID_CHANGES_NEED_CONFIRMATION",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The upload would change the user IDs of many people",
        message="This file would change the userId of {detail}.",
        fix="If the ID changes are intended, confirm them (the Confirm button in Slack, or "
        "--confirm-id-changes on the command line); otherwise put the stored userIds back in "
        "the file (download the roster to see them).",
    ),
    Code(
        code="FILE_TOO_WIDE",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="The file has too many columns",
        message="The header line has {value} columns; at most {detail} are read.",
        fix="Delete the extra columns (often a line of commas or a whole row pasted as headers) "
        "and keep one column per dictionary header.",
    ),
    Code(
        code="FILE_RAGGED",
        group="file",
        severity=E,
        scope=Scope.FILE,
        title="Most rows do not line up with the header",
        message="The file is not the table its header describes: {value} rows have a different "
        "number of fields than the header's {detail}.",
        fix="Open the file in a spreadsheet, check that every row has one value per header, "
        "and save it again as 'CSV UTF-8 (Comma delimited)'.",
    ),
    Code(
        code="FILE_DELIMITER",
        group="file",
        severity=W,
        scope=Scope.NOTE,
        title="The file is not separated by commas",
        message="The columns are separated by {value}, not commas; the file was read that way.",
        fix="Nothing to do; to avoid the note, save as 'CSV UTF-8 (Comma delimited)'.",
    ),
    Code(
        code="FILE_WORKBOOK",
        group="file",
        severity=W,
        scope=Scope.NOTE,
        title="The file is an Excel workbook",
        message="The file is an Excel workbook; the sheet '{value}' was read, "
        "each cell as the spreadsheet shows it.",
        fix="Check that this is the right sheet; to choose yourself, save that sheet as "
        "'CSV UTF-8 (Comma delimited)'.",
    ),
    # --- headers --------------------------------------------------------------------------------
    Code(
        code="HEADER_MISSING",
        group="header",
        severity=E,
        scope=Scope.FILE,
        title="A required column header is missing",
        message="The required column '{column}' is missing{detail}.",
        fix="Add the missing column with the header named.",
    ),
    Code(
        code="HEADER_CASE",
        group="header",
        severity=W,
        scope=Scope.NOTE,
        title="A header has the wrong letter case or spaces",
        message="The header '{value}' was read as '{column}'.",
        fix="Nothing to do; to avoid the note, spell the header as the message shows "
        "(that letter case, no spaces around it).",
    ),
    Code(
        code="HEADER_UNKNOWN",
        group="header",
        severity=W,
        scope=Scope.NOTE,
        title="A column header is not recognised",
        message="The header '{value}' is not in the data dictionary{detail}.",
        fix="If it is a dictionary header spelt differently, rename it to the header suggested; "
        "otherwise nothing to do: the column is ignored and kept in the error report.",
    ),
    Code(
        code="HEADER_DUPLICATE",
        group="header",
        severity=E,
        scope=Scope.FILE,
        title="The same header appears twice",
        message="The header '{value}' appears more than once.",
        fix="Keep one column with that header and delete or rename the other.",
    ),
    Code(
        code="HEADER_BLANK",
        group="header",
        severity=E,
        scope=Scope.FILE,
        title="A column has no header",
        message="Column {detail} has an empty header.",
        fix="Give the column a header, or delete it (often a stray comma at the end of the header line).",
    ),
    Code(
        code="HEADER_NOT_FIRST_ROW",
        group="header",
        severity=W,
        scope=Scope.NOTE,
        title="The headers are not on the first row",
        message="The headers were found on row {value}; the blank rows above them were skipped.",
        fix="Nothing to do; row numbers are the spreadsheet's own. Delete the blank rows above "
        "the headers to avoid the note.",
    ),
    # --- action ---------------------------------------------------------------------------------
    Code(
        code="ACTION_INVALID",
        group="action",
        severity=E,
        scope=Scope.ROW,
        title="The action is not recognised",
        message="The action '{value}' is not one of blank, REMOVE-CLASS, REMOVE-ENROLLMENT or "
        "DEACTIVATE-USER{detail}.",
        fix="Leave action blank to add or update, or use REMOVE-CLASS, REMOVE-ENROLLMENT or "
        "DEACTIVATE-USER.",
    ),
    Code(
        code="ACTION_NEEDS_CLASS",
        group="action",
        severity=E,
        scope=Scope.ROW,
        title="A remove action has no classId",
        message="The action '{value}' needs a classId.",
        fix="Put the class's classId on the row, or use DEACTIVATE-USER to remove a person.",
    ),
    Code(
        code="ACTION_CLASS_NOT_FOUND",
        group="action",
        severity=E,
        scope=Scope.ROW,
        title="The class to remove does not exist",
        message="The class '{value}' is not in this district's roster, so it cannot be "
        "removed{detail}.",
        fix="Check the classId (letter case, leading zeros), or delete the row if the class is "
        "already gone.",
    ),
    Code(
        code="ACTION_USER_NOT_FOUND",
        group="action",
        severity=E,
        scope=Scope.ROW,
        title="The person to remove does not exist",
        message="The person '{value}' is not in this district's roster{detail}.",
        fix="Check the userId (letter case, leading zeros), or delete the row.",
    ),
    Code(
        code="ACTION_ENROLLMENT_NOT_FOUND",
        group="action",
        severity=W,
        scope=Scope.NOTE,
        title="The enrollment to remove does not exist",
        message="The person '{value}' is not enrolled in that class, so there was nothing to remove.",
        fix="No change needed; delete the row next time.",
    ),
    # --- org_sis_id -----------------------------------------------------------------------------
    Code(
        code="ORG_REQUIRED",
        group="org_sis_id",
        severity=E,
        scope=Scope.ROW,
        title="The school ID is blank",
        message="org_sis_id is blank.",
        fix="Fill in the school's org_sis_id, exactly as set up for your district.",
    ),
    Code(
        code="ORG_NOT_FOUND",
        group="org_sis_id",
        severity=E,
        scope=Scope.ROW,
        title="The school is not set up for the district",
        message="No school '{value}' is set up for this district{detail}.",
        fix="Use the org_sis_id of a school set up for your district (ask support to add a new school).",
    ),
    Code(
        code="ORG_EXCEL",
        group="org_sis_id",
        severity=E,
        scope=Scope.ROW,
        title="A spreadsheet turned the school ID into a number",
        message="The school ID '{value}' was changed by a spreadsheet {detail}.",
        fix=_EXCEL_FIX,
    ),
    Code(
        code="ORG_CLASS_MISMATCH",
        group="org_sis_id",
        severity=E,
        scope=Scope.ROW,
        title="The class belongs to a different school",
        message="{detail}.",
        fix="Use one org_sis_id for every row of a class, the school the class belongs to.",
    ),
    # --- userId ---------------------------------------------------------------------------------
    Code(
        code="USERID_REQUIRED",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="The user ID is blank",
        message="userId is blank.",
        fix="Fill in the person's userId (their ID in your student information system).",
    ),
    Code(
        code="USERID_INVALID",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="The ID has characters that are not allowed",
        message="{column} '{value}' {detail}.",
        fix=f"Use only letters, digits, '-', '_' and '.', at most {ID_MAX} characters.",
    ),
    Code(
        code="USERID_EXCEL",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="A spreadsheet turned the ID into a number",
        message="{column} '{value}' was changed by a spreadsheet {detail}.",
        fix=_EXCEL_FIX,
    ),
    Code(
        code="USER_CONFLICT",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="Rows for the same person disagree",
        message="Rows for userId '{detail}' give different values for {column}{others}.",
        fix="Make every row of this person carry the same value (or leave it blank on all but one).",
    ),
    Code(
        code="USERID_ROLE_CHANGE",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="A student cannot become staff or the reverse",
        message="The userId '{value}' is stored as {detail}; a userId cannot switch between student and "
        "staff.",
        fix="Use a new userId for the new role, or correct userRole.",
    ),
    Code(
        code="USERID_CHANGED",
        group="userId",
        severity=W,
        scope=Scope.NOTE,
        title="The person's ID was changed",
        message="The person with this email had the userId '{detail}'; it is now '{value}'.",
        fix="No action needed if the ID change is intended; otherwise upload the old userId.",
    ),
    Code(
        code="USERID_ZEROS_LOST",
        group="userId",
        severity=E,
        scope=Scope.PERSON,
        title="A spreadsheet dropped the leading zeros of the user ID",
        message="The userId '{value}' is the stored person '{detail}' without its leading zeros "
        "(same email or name); the person was not changed.",
        fix=_ZEROS_FIX,
    ),
    # --- names ----------------------------------------------------------------------------------
    Code(
        code="FIRSTNAME_REQUIRED",
        group="userFirstName",
        severity=E,
        scope=Scope.PERSON,
        title="The first name is blank",
        message="userFirstName is blank.",
        fix="Fill in the person's first name.",
    ),
    Code(
        code="LASTNAME_REQUIRED",
        group="userLastName",
        severity=E,
        scope=Scope.PERSON,
        title="The last name is blank",
        message="userLastName is blank.",
        fix="Fill in the person's last name.",
    ),
    Code(
        code="NAME_TOO_LONG",
        group="userFirstName",
        severity=E,
        scope=Scope.PERSON,
        title=f"A name is over {NAME_MAX} characters",
        message=f"{{column}} is {{detail}} characters long, over the limit of {NAME_MAX}.",
        fix=f"Shorten the name to at most {NAME_MAX} characters.",
        also_in=("userLastName",),
    ),
    # --- userEmail ------------------------------------------------------------------------------
    Code(
        code="EMAIL_REQUIRED",
        group="userEmail",
        severity=E,
        scope=Scope.PERSON,
        title="The email is blank",
        message="userEmail is blank.",
        fix="Fill in the person's email address.",
    ),
    Code(
        code="EMAIL_INVALID",
        group="userEmail",
        severity=E,
        scope=Scope.PERSON,
        title="The email is not a valid address",
        message="The email '{value}' is not a valid email address{detail}.",
        fix="Write the address as name@domain.org with no spaces and exactly one @.",
    ),
    Code(
        code="EMAIL_AMPLIFY_DOMAIN",
        group="userEmail",
        severity=E,
        scope=Scope.PERSON,
        title="Vendor email addresses are not accepted",
        message="The email '{value}' is an Amplify address; staff and students need their district "
        "address.",
        fix="Use the person's school or district email address.",
    ),
    Code(
        code="EMAIL_DUPLICATE",
        group="userEmail",
        severity=E,
        scope=Scope.PERSON,
        title="Two people in the file share an email",
        message="The email '{value}' is used by more than one userId in this file ({detail}).",
        fix="Give each person their own email, or use one userId if they are the same person.",
    ),
    Code(
        code="EMAIL_TAKEN",
        group="userEmail",
        severity=E,
        scope=Scope.PERSON,
        title="The email belongs to someone else already",
        message="The email '{value}' already belongs to another person{detail}.",
        fix="Check the email; if it is the same person, use their existing userId.",
    ),
    # --- userRole -------------------------------------------------------------------------------
    Code(
        code="ROLE_INVALID",
        group="userRole",
        severity=E,
        scope=Scope.PERSON,
        title="The role is not recognised",
        message="The role '{value}' is not student, teacher or administrator.",
        fix="Use student, teacher or administrator.",
    ),
    Code(
        code="ROLE_NOT_ALLOWED",
        group="userRole",
        severity=E,
        scope=Scope.PERSON,
        title="Students come from the district's rostering provider",
        message="Students cannot be uploaded here: this district's students come from {detail}.",
        fix="Remove student rows; add or fix students in your rostering provider's roster instead.",
    ),
    # --- userGrade ------------------------------------------------------------------------------
    Code(
        code="USERGRADE_REQUIRED",
        group="userGrade",
        severity=E,
        scope=Scope.PERSON,
        title="A student has no grade",
        message="userGrade is blank on a student row.",
        fix="Fill in the student's grade: IT PR PK TK KG 01-13 PS UG Other.",
    ),
    Code(
        code="USERGRADE_INVALID",
        group="userGrade",
        severity=E,
        scope=Scope.PERSON,
        title="The grade is not recognised",
        message="The grade '{value}' is not a grade code.",
        fix="Use one of: IT PR PK TK KG 01 02 03 04 05 06 07 08 09 10 11 12 13 PS UG Other.",
    ),
    Code(
        code="USERGRADE_NORMALIZED",
        group="userGrade",
        severity=W,
        scope=Scope.NOTE,
        title="The grade was written a different way",
        message="The grade '{value}' was read as '{detail}'.",
        fix="No action needed; next time write the grade code shown (e.g. KG, 05, PK).",
    ),
    Code(
        code="USERGRADE_IGNORED",
        group="userGrade",
        severity=W,
        scope=Scope.NOTE,
        title="Staff do not have a grade",
        message="The grade '{value}' on a staff row was ignored.",
        fix="Leave userGrade blank for teachers and administrators.",
    ),
    # --- classId --------------------------------------------------------------------------------
    Code(
        code="CLASSID_REQUIRED",
        group="classId",
        severity=E,
        scope=Scope.CLASS,
        title="Class details without a classId",
        message="The row has class details but no classId.",
        fix="Fill in the classId, or clear the class columns if the row is only about the person.",
    ),
    Code(
        code="CLASSID_INVALID",
        group="classId",
        severity=E,
        scope=Scope.CLASS,
        title="The class ID has characters that are not allowed",
        message="classId '{value}' {detail}.",
        fix=f"Use only letters, digits, '-', '_' and '.', at most {ID_MAX} characters.",
    ),
    Code(
        code="CLASSID_EXCEL",
        group="classId",
        severity=E,
        scope=Scope.CLASS,
        title="A spreadsheet turned the class ID into a number",
        message="classId '{value}' was changed by a spreadsheet {detail}.",
        fix=_EXCEL_FIX,
    ),
    Code(
        code="CLASSID_ZEROS_LOST",
        group="classId",
        severity=E,
        scope=Scope.CLASS,
        title="A spreadsheet dropped the leading zeros of the class ID",
        message="The classId '{value}' is the stored class '{detail}' of the same school without "
        "its leading zeros; the class and this enrollment were not changed.",
        fix=_ZEROS_FIX,
    ),
    # --- className ------------------------------------------------------------------------------
    Code(
        code="CLASSNAME_REQUIRED",
        group="className",
        severity=E,
        scope=Scope.CLASS,
        title="The class has no name",
        message="className is blank for class '{detail}'.",
        fix="Fill in the class name on every row of the class.",
    ),
    Code(
        code="CLASSNAME_CONFLICT",
        group="className",
        severity=E,
        scope=Scope.CLASS,
        title="Rows for one class give different names",
        message="Rows for class '{detail}' give different class names{others}.",
        fix="Use exactly the same className on every row of the class.",
    ),
    Code(
        code="CLASSNAME_TOO_LONG",
        group="className",
        severity=E,
        scope=Scope.CLASS,
        title=f"The class name is over {CLASSNAME_MAX} characters",
        message=f"className is {{detail}} characters long, over the limit of {CLASSNAME_MAX}.",
        fix=f"Shorten the class name to at most {CLASSNAME_MAX} characters.",
    ),
    # --- classGrade -----------------------------------------------------------------------------
    Code(
        code="CLASSGRADE_REQUIRED",
        group="classGrade",
        severity=E,
        scope=Scope.CLASS,
        title="The class has no grade",
        message="classGrade is blank for class '{detail}'.",
        fix='Fill in the class grade, or several in quotes like "03,04".',
    ),
    Code(
        code="CLASSGRADE_INVALID",
        group="classGrade",
        severity=E,
        scope=Scope.CLASS,
        title="The class grade is not recognised",
        message="The class grade '{value}' is not a grade code{detail}.",
        fix="Use grade codes (IT PR PK TK KG 01-13 PS UG Other), several separated by commas in one "
        "quoted cell.",
    ),
    Code(
        code="CLASSGRADE_CONFLICT",
        group="classGrade",
        severity=E,
        scope=Scope.CLASS,
        title="Rows for one class give different grades",
        message="Rows for class '{detail}' give different class grades{others}.",
        fix="Use exactly the same classGrade on every row of the class.",
    ),
    Code(
        code="CLASSGRADE_NORMALIZED",
        group="classGrade",
        severity=W,
        scope=Scope.NOTE,
        title="The class grade was written a different way",
        message="The class grade '{value}' was read as '{detail}'.",
        fix="No action needed; next time write the grade codes shown (e.g. KG, 05, PK).",
    ),
    # --- primary_teacher ------------------------------------------------------------------------
    Code(
        code="PRIMARY_TEACHER_INVALID",
        group="primary_teacher",
        severity=E,
        scope=Scope.ENROLLMENT,
        title="primary_teacher is not Y or N",
        message="primary_teacher '{value}' is not Y or N.",
        fix="Use Y for the class's primary teacher and N (or blank) for everyone else.",
    ),
    Code(
        code="PRIMARY_TEACHER_NOT_STAFF",
        group="primary_teacher",
        severity=E,
        scope=Scope.ENROLLMENT,
        title="A student is marked as primary teacher",
        message="A student cannot be a primary teacher (primary_teacher is '{value}').",
        fix="Set primary_teacher to N or blank on student rows.",
    ),
    Code(
        code="PRIMARY_TEACHER_NO_CLASS",
        group="primary_teacher",
        severity=W,
        scope=Scope.NOTE,
        title="primary_teacher without a class",
        message="primary_teacher is '{value}' but the row has no classId, so it was ignored.",
        fix="Add the classId, or clear primary_teacher.",
    ),
    # --- class (after apply) --------------------------------------------------------------------
    Code(
        code="CLASS_NO_PRIMARY_TEACHER",
        group="class",
        severity=W,
        scope=Scope.NOTE,
        title="The class has no primary teacher",
        message="Class '{value}' has no primary teacher.",
        fix="Add a row for the class's teacher with primary_teacher Y.",
    ),
    Code(
        code="CLASS_MULTIPLE_PRIMARY",
        group="class",
        severity=W,
        scope=Scope.NOTE,
        title="The class has more than one primary teacher",
        message="Class '{value}' has {detail} primary teachers; the first assigned is the official one.",
        fix="Set primary_teacher Y for one teacher only, N for co-teachers.",
    ),
    Code(
        code="CLASS_SIZE",
        group="class",
        severity=W,
        scope=Scope.NOTE,
        title="The class is larger than recommended",
        message=f"Class '{{value}}' has {{detail}} active students, over the recommended maximum of {CLASS_SIZE_MAX}.",
        fix=f"Split the class into sections of at most {CLASS_SIZE_MAX} students if you can.",
    ),
    # --- Failed ---------------------------------------------------------------------------------
    Code(
        code="ROW_FIELD_COUNT",
        group="Failed",
        severity=E,
        scope=Scope.FAILED,
        title="The row has the wrong number of fields",
        message="The row has {value} fields but the header has {detail}.",
        fix="Check for extra or missing commas; put quotes around values that contain commas.",
    ),
    Code(
        code="FAILED",
        group="Failed",
        severity=E,
        scope=Scope.FAILED,
        title="The upload could not be saved",
        message="The file passed validation but could not be saved: {detail}.",
        fix="Upload the file again; if it fails again, contact support with this report.",
    ),
    Code(
        code="TEMPLATE_EXAMPLE_ROW",
        group="Failed",
        severity=E,
        scope=Scope.FAILED,
        title="The row is an example row of the template",
        message="This is an example row of the rosterbot template ({detail}); example rows are "
        "never applied.",
        fix="Delete the template's example rows and fill in your own people, one row per person "
        "(and class).",
    ),
    # --- demographics.csv -----------------------------------------------------------------------
    Code(
        code="DEMO_USERID_REQUIRED",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="The demographics row has no userId",
        message="userId is blank.",
        fix="Fill in the student's userId, as in users.csv.",
    ),
    Code(
        code="DEMO_USER_NOT_FOUND",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="The student is not in the roster",
        message="No person '{value}' is in this district's roster{detail}.",
        fix="Upload the student in users.csv first (or in the same message), or fix the userId.",
    ),
    Code(
        code="DEMO_NOT_STUDENT",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="Demographics are for students only",
        message="The person '{value}' is staff; demographics are kept for students only.",
        fix="Delete the row, or use the student's userId.",
    ),
    Code(
        code="DEMO_DUPLICATE",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="The student has more than one row",
        message="userId '{value}' appears on more than one row.",
        fix="Keep one row per student.",
    ),
    Code(
        code="DEMO_VALUE_INVALID",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="A demographics value is not accepted",
        message="{column} '{value}' is not accepted; use {detail}.",
        fix="Use one of the accepted values for the column (see the data dictionary).",
    ),
    Code(
        code="DEMO_DATE_INVALID",
        group="demographics",
        severity=E,
        scope=Scope.DEMOGRAPHICS,
        title="The birth date is not valid",
        message="birthDate '{value}' {detail}.",
        fix="Write the date as YYYY-MM-DD, a real date between 1900 and today.",
    ),
    Code(
        code="DEMO_VALUE_NORMALIZED",
        group="demographics",
        severity=W,
        scope=Scope.NOTE,
        title="A demographics value was normalised",
        message="{column} '{value}' was read as '{detail}'.",
        fix="No action needed; next time write the value shown (Y/N, M/F/X, YYYY-MM-DD).",
    ),
    Code(
        code="DEMO_RACE_INCONSISTENT",
        group="demographics",
        severity=W,
        scope=Scope.NOTE,
        title="The race flags do not add up",
        message="demographicRaceTwoOrMoreRaces is '{value}' but {detail}.",
        fix="Set demographicRaceTwoOrMoreRaces to Y exactly when two or more race columns are Y.",
    ),
)

CATALOG: dict[str, Code] = {c.code: c for c in CODES}

#: Column groups of the knowledge base, in the order product.md lists them.
ERROR_GROUPS: tuple[str, ...] = (
    "action",
    "org_sis_id",
    "userId",
    "userFirstName",
    "userLastName",
    "userEmail",
    "userRole",
    "userGrade",
    "classId",
    "className",
    "classGrade",
    "primary_teacher",
    "class",
    "header",
    "file",
    "Failed",
    "demographics",
)


def codes_in_group(group: str) -> list[str]:
    """Codes that belong to an error group, in catalog order."""
    return [c.code for c in CODES if c.group == group or group in c.also_in]


def code(name: str) -> Code:
    """Look a code up; a typo in a code name fails loudly at import or test time."""
    return CATALOG[name]
