"""Page helpers per role: what a person does on the product's pages, in their language.

Each helper drives one Playwright page and waits on what the person would see (a status,
a heading, a message), never on time. Text is looked up in the product's own catalogs
(`in_language`), so the journeys read the pages the way each person does. Selectors
prefer what a person uses (labels, roles, button names); `data-testid` where the page
offers one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import httpx
from playwright.sync_api import expect

from tests.journeys.conftest import PAGE_TIMEOUT, Mail, Product, in_language

PASSWORD = "appease-demo"  # demo_data's, printed on screen
DELIVERY_TIMEOUT = 90_000  # milliseconds: a worker sends within seconds, on a busy machine more
# A code as messages write it: groups of the code alphabet, dash-separated (80 bits: 17
# characters, in groups of four).
CODE = re.compile(r"\b([23456789A-Z]+(?:-[23456789A-Z]+){3,})\b")
SURVEY_LINK = re.compile(r"https?://\S+/s/[^\s/]+/")


def log_in(page, username: str, *, path: str = "/accounts/login/") -> None:
    """The product's login form, or the admin's (same field ids)."""
    page.goto(path)
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form [type=submit]").click()
    page.wait_for_url(lambda url: "/login/" not in url)


# --- The rep ----------------------------------------------------------------------------------


@dataclass
class IssuanceResult:
    """The result panel of the appeasement just given, on the customer's page: the first
    one (a page that lists every appeasement given puts the newest first)."""

    page: object

    @property
    def panel(self):
        return self.page.locator("[data-testid=issuance-result]").first

    def wait_status(self, status: str, timeout: float = DELIVERY_TIMEOUT) -> IssuanceResult:
        # The panel is swapped as it updates: the locator finds the current one each time.
        expect(self.panel).to_have_attribute("data-status", status, timeout=timeout)
        return self

    @property
    def last4(self) -> str:
        return self.panel.locator(".code").first.inner_text().rsplit("-", 1)[-1]

    def text(self) -> str:
        return self.panel.inner_text()

    def reveal(self, label: str) -> str:
        """ "Show the full code" (`label`, in the rep's language): the code, once shown and
        focused."""
        self.panel.get_by_role("button", name=label).click()
        shown = self.page.locator("[data-testid=revealed-code]:focus")
        shown.wait_for()
        return shown.inner_text().strip()

    def resend(self, *, summary: str, field: str, button: str, address: str) -> None:
        """ "Send again", to `address`: the panel says it was sent again."""
        self.panel.locator("summary", has_text=summary).click()
        self.panel.get_by_label(field).fill(address)
        self.panel.get_by_role("button", name=button).click()
        self.panel.locator("[data-testid=resent]").wait_for()


class CSR:
    """A rep on the CSR pages, in `language` (their profile's, or their browser's)."""

    def __init__(self, page, language: str) -> None:
        self.page = page
        self.language = language

    @classmethod
    def log_in(cls, page, username: str, language: str) -> CSR:
        log_in(page, username)
        page.wait_for_url("**/csr/")
        rep = cls(page, language)
        assert page.locator("html").get_attribute("lang") == language
        return rep

    def t(self, text: str) -> str:
        return in_language(self.language, text)

    # Finding and creating customers

    def search(self, query: str):
        """Type into the search box (results come as the rep types); the result links."""
        self.page.goto("/csr/")
        self.page.get_by_label(self.t("Name, email, phone or order reference")).fill(query)
        results = self.page.locator("#results")
        results.get_by_role("link", name=self.t("New customer")).wait_for()
        return results.locator("ul.results a")

    def open_customer(self, name: str, *, email: str = "") -> None:
        """Found by email when given: the history has customers of the same name."""
        results = self.search(email or name)
        results.filter(has_text=name).first.click()
        self.page.get_by_role("heading", name=name, level=1).wait_for()

    def create_customer(self, *, name: str, email: str, language: str, currency: str = "") -> None:
        """From a search that finds nobody, "New customer", the form (the currency too, if
        given), "Create and continue"."""
        results = self.search(name)
        assert results.count() == 0, results.all_inner_texts()
        self.page.locator("#results").get_by_role("link", name=self.t("New customer")).click()
        form = self.page.locator("form").filter(has=self.page.locator("#id_name"))
        assert form.locator("#id_name").input_value() == name  # carried over from the search
        form.locator("#id_email").fill(email)
        form.locator("#id_preferred_channel").select_option("email")
        form.locator("#id_language").select_option(language)
        if currency:
            form.get_by_label(self.t("Currency")).select_option(currency)
        form.get_by_role("button", name=self.t("Create and continue")).click()
        self.page.get_by_role("heading", name=name, level=1).wait_for()

    # Giving

    def give(self, *, offer: str, reason: str, note: str = "") -> IssuanceResult:
        """On the customer's page: the offer (by its description), the reason (by its
        label), "Give it now". The result panel, once it shows."""
        form = self.page.locator("#issue-form")
        form.locator("label.offer", has=self.page.get_by_text(offer, exact=True)).locator("input").check()
        form.get_by_role("combobox", name=self.t("Reason")).select_option(label=reason)
        if note:
            form.get_by_role("textbox", name=self.t("Note")).fill(note)
        with self.page.expect_response(lambda r: r.request.method == "POST" and "/issue/" in r.url) as answer:
            form.get_by_role("button", name=self.t("Give it now")).click()
        assert answer.value.status < 400, answer.value.text()
        result = IssuanceResult(self.page)
        result.panel.wait_for()
        return result

    def result(self) -> IssuanceResult:
        """The newest appeasement's panel on the customer's page, once it shows."""
        result = IssuanceResult(self.page)
        result.panel.wait_for()
        return result

    def offers(self) -> list[str]:
        """The offers the customer's page lists, in order (their descriptions)."""
        return self.page.locator("#issue-form label.offer .offer-name").all_inner_texts()

    def refused(self, text: str):
        """The refusal now in the form: it says `text`, is announced (role=alert) and has
        the focus. Its box."""
        box = self.page.locator("#issue-form [data-testid=refused]")
        box.filter(has_text=text).wait_for()
        assert box.get_attribute("role") == "alert"
        self.page.locator("#issue-form [data-testid=refused]:focus").wait_for()  # focus moves once htmx settles
        return box

    def press_give(self, *, offer: str | None = None, reason: str | None = None, channel: str | None = None):
        """Choose what is given (what is None stays as it is) and press "Give it now",
        once: the answer's status (the form is swapped when it comes)."""
        form = self.page.locator("#issue-form")
        if offer is not None:
            form.locator("label.offer", has=self.page.get_by_text(offer, exact=True)).locator("input").check()
        if reason is not None:
            form.get_by_role("combobox", name=self.t("Reason")).select_option(label=reason)
        if channel is not None:
            form.get_by_role("combobox", name=self.t("Send by")).select_option(channel)
        with self.page.expect_response(lambda r: r.request.method == "POST" and "/issue/" in r.url) as answer:
            form.get_by_role("button", name=self.t("Give it now")).click()
        return answer.value.status

    # Cases

    def next_case(self) -> CasePage:
        self.page.goto("/csr/cases/")
        self.page.get_by_role("button", name=self.t("Next case")).click()
        self.page.wait_for_url(re.compile(r"/csr/cases/\d+/$"))
        return CasePage(self.page, self.language)

    def open_case(self, case_id: int) -> CasePage:
        self.page.goto(f"/csr/cases/{case_id}/")
        return CasePage(self.page, self.language)


class CasePage:
    def __init__(self, page, language: str) -> None:
        self.page = page
        self.language = language

    def t(self, text: str) -> str:
        return in_language(self.language, text)

    @property
    def case_id(self) -> int:
        return int(re.search(r"/csr/cases/(\d+)/", self.page.url).group(1))

    @property
    def status(self) -> str:
        return self.page.locator("[data-testid=case-status]").inner_text()

    @property
    def score(self) -> int:
        """The priority score ("Why priority score N")."""
        summary = self.page.locator("details:has([data-testid=score-reasons]) > summary")
        return int(re.search(r"\d+", summary.inner_text()).group(0))

    def take(self) -> None:
        self.page.get_by_role("button", name=self.t("Take this case")).click()
        self.page.locator("[data-testid=case-status]", has_text=self.t("Being worked")).wait_for()

    def recommended(self) -> list[str]:
        """The recommended interventions' names, best first."""
        return self.page.locator("[data-testid=recommendations] > li > strong").all_inner_texts()

    def resolve(self, *, note: str, intervention: str = "") -> None:
        """ "Resolve" with a note and an intervention (by its label; empty: what was given)."""
        form = self.page.locator("#case-resolve")
        form.get_by_label(self.t("How was it resolved?")).fill(note)
        if intervention:
            form.get_by_label(self.t("Intervention")).select_option(label=intervention)
        form.get_by_role("button", name=self.t("Resolve")).click()
        self.page.wait_for_url("**/csr/cases/")
        self.page.get_by_text(self.t("Case resolved. The customer will be asked whether it worked.")).wait_for()


# --- The supervisor ----------------------------------------------------------------------------


class Supervisor:
    """A supervisor in the admin and on the approvals page."""

    def __init__(self, page, language: str) -> None:
        self.page = page
        self.language = language

    @classmethod
    def log_in(cls, page, username: str, language: str) -> Supervisor:
        log_in(page, username, path="/admin/login/")
        page.wait_for_url("**/admin/")
        return cls(page, language)

    def t(self, text: str) -> str:
        return in_language(self.language, text)

    def approve_in_admin(self, customer: str) -> None:
        """Admin, Issuances, waiting for approval, this customer's: the "Approve selected
        issuances" action."""
        self.page.goto(f"/admin/appease/issuance/?status__exact=pending_approval&q={customer}")
        rows = self.page.locator("#result_list tbody tr")
        assert rows.count() == 1, rows.all_inner_texts()
        rows.first.locator("input.action-select").check()
        self.page.locator("select[name=action]").select_option("approve_selected")
        self.page.locator("button[name=index]").click()
        success = self.t("%(count)d issuances approved.") % {"count": 1}
        self.page.locator(".messagelist .success", has_text=success).wait_for()

    def approve_on_approvals_page(self, customer: str) -> None:
        """/csr/approvals/: one click on "Approve" in this customer's row."""
        self.page.goto("/csr/approvals/")
        row = self.page.locator("[data-testid=approval-row]", has_text=customer)
        assert row.count() == 1, self.page.locator("[data-testid=approval-row]").all_inner_texts()
        row.get_by_role("button", name=self.t("Approve")).click()
        decided = self.page.locator("[data-testid=approval-row]", has_text=customer).locator("[data-testid=decision]")
        decided.wait_for()
        assert decided.inner_text() == self.t("Issued")

    # Reports

    def drill_down(self, chart_id: str) -> None:
        """Click the tallest bar of a chart: its list of issuances opens."""
        self.page.locator(f"#{chart_id}").scroll_into_view_if_needed()
        bars = self.page.locator(f"#{chart_id} .barlayer .point path")
        boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
        box = max((box for box in boxes if box), key=lambda box: box["height"])
        # plotly listens on its drag layer, above the bars: click where the bar is drawn
        self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.wait_for_url("**/admin/reports/issuances/?**")

    def report_pages(self) -> list[tuple[str, str]]:
        """(label, path) of every report page, from the reports' own navigation."""
        self.page.goto("/admin/reports/")
        links = self.page.locator(".reports-nav a")
        return [
            (links.nth(i).inner_text(), links.nth(i).get_attribute("href").split("?")[0]) for i in range(links.count())
        ]

    def charts(self) -> dict[str, list[dict]]:
        """Every plotly chart on the page once drawn: id -> traces, each with its name and
        how many points it has (bars, line points or pie slices)."""
        charts = self.page.locator(".plotly-graph-div")
        for i in range(charts.count()):
            charts.nth(i).and_(self.page.locator(".drawn")).wait_for()
        return self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('.plotly-graph-div')].map(div => [
                div.id,
                (div.data || []).map(trace => ({
                    name: trace.name || '',
                    points: Math.max((trace.x || []).length, (trace.y || []).length, (trace.values || []).length),
                })),
            ]))"""
        )


# --- The customer --------------------------------------------------------------------------------


class Customer:
    """A customer: their mailbox at the SMTP server, and the pages its links open."""

    def __init__(self, product: Product, email: str, language: str) -> None:
        self.product = product
        self.email = email
        self.language = language

    def t(self, text: str) -> str:
        return in_language(self.language, text)

    def wait_for_mail(self, *, containing: str = "", timeout: float = DELIVERY_TIMEOUT / 1000) -> Mail:
        return self.product.mailbox.wait_for(self.email, matching=lambda mail: containing in mail.text, timeout=timeout)

    def wait_for_code(self, last4: str, *, timeout: float = DELIVERY_TIMEOUT / 1000) -> tuple[Mail, str]:
        """The message carrying the code whose last four characters the rep saw: (message, code)."""

        def carries(mail: Mail) -> bool:
            return any(code.replace("-", "").endswith(last4) for code in CODE.findall(mail.text))

        mail = self.product.mailbox.wait_for(self.email, matching=carries, timeout=timeout)
        return mail, self.code_in(mail)

    @staticmethod
    def code_in(mail: Mail) -> str:
        codes = CODE.findall(mail.text)
        assert len(codes) == 1, (codes, mail.text)
        return codes[0]

    @staticmethod
    def survey_link(mail: Mail) -> str:
        links = SURVEY_LINK.findall(mail.text)
        assert len(links) == 1, (links, mail.text)
        return links[0]

    def complain(self, *, name: str, text: str, rating: int = 1) -> int:
        """Through the feedback API, as the shop's widget posts it: the case it opened."""
        answer = self.product.api(
            "POST",
            "/api/v1/feedback",
            json={
                "site_key": self.product.site_key,
                "rating": rating,
                "text": text,
                "email": self.email,
                "name": name,
                "language": self.language,
                "source": "widget",
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["case_id"], answer.json()
        return answer.json()["case_id"]

    def answer_survey(self, page, link: str, *, solved: bool, csat: int, comment: str = "") -> str:
        """Open the survey link, answer, send: the text of the page that follows."""
        page.goto(link)
        assert page.locator("html").get_attribute("lang") == self.language
        page.get_by_role("radio", name=self.t("Yes") if solved else self.t("No"), exact=True).check()
        page.get_by_role("radio", name=f"{csat}★", exact=True).check()
        if comment:
            page.get_by_label(self.t("Anything else? (optional)")).fill(comment)
        page.get_by_role("button", name=self.t("Send")).click()
        page.locator("[data-testid=survey-thanks]").wait_for(timeout=PAGE_TIMEOUT)
        return page.locator(".card").inner_text()


# --- The merchant's checkout ----------------------------------------------------------------------


class Checkout:
    """The merchant's checkout calling the redemption API with its key."""

    def __init__(self, product: Product) -> None:
        self.product = product

    def redeem(self, code: str, *, order_id: str, order_total: Decimal, currency: str) -> httpx.Response:
        return self.product.api(
            "POST",
            "/api/v1/redemptions",
            headers={"Authorization": f"Api-Key {self.product.merchant_key}", "Idempotency-Key": f"order-{order_id}"},
            json={"code": code, "order_id": order_id, "order_total": str(order_total), "currency": currency},
        )
