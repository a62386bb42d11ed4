//! productpage's HTML: the Tailwind product page, the intro page and Werkzeug-style replies.
//!
//! The markup is our own, but it carries every string Istio's labs and doc tests look for: the
//! title, the sign-in button and dialog, the star `<svg id="glyphicon glyphicon-star">` elements,
//! the star colour class and the error texts.

use crate::json::Value;
use std::fmt::Write;

/// What the product page shows.
pub(crate) struct PageData<'a> {
    /// The session user (`session.get('user', '')`); shown as signed in when non-empty.
    pub(crate) user: &'a str,
    pub(crate) product_title: &'a str,
    pub(crate) product_description_html: &'a str,
    pub(crate) details_status: u16,
    pub(crate) details: &'a Value,
    pub(crate) reviews_status: u16,
    pub(crate) reviews: &'a Value,
}

/// Jinja/MarkupSafe escaping.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `{{ value.key }}`: Python's `str()` of the member, empty when undefined, escaped.
fn field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .map(|v| escape(&v.python_str()))
        .unwrap_or_default()
}

const HEAD: &str = r##"<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">

<title>Simple Bookstore App</title>
<link rel="stylesheet" href="static/tailwind/tailwind.css">
<script type="text/javascript">
  window.addEventListener("DOMContentLoaded", () => {
    const dialog = document.querySelector("dialog");
    const open = document.querySelector("#sign-in-button");
    const close = document.querySelector("#close-dialog");
    if (open) { open.addEventListener("click", () => dialog.showModal()); }
    if (close) { close.addEventListener("click", () => dialog.close()); }
  });
</script>
"##;

const SIGN_IN_DIALOG: &str = r#"
<dialog id="dialog" class="w-full sm:w-2/3 lg:w-1/3 border rounded-md shadow-xl">
  <div class="flex flex-col justify-center px-6 py-12">
    <button id="close-dialog" type="button" class="self-end text-gray-400">Close</button>
    <h2 class="mt-5 text-center text-2xl font-bold text-gray-900">Sign in to BookInfo</h2>
    <form class="space-y-6" method="post" action='login' name="login_form">
      <label for="username" class="block text-sm font-medium text-gray-900">Username</label>
      <input id="username" name="username" required class="block w-full rounded-md px-3 py-1.5">
      <label for="password" class="block text-sm font-medium text-gray-900">Password</label>
      <input id="password" name="passwd" type="password" required class="block w-full rounded-md px-3 py-1.5">
      <button type="submit" class="w-full rounded-md bg-blue-600 px-3 py-1.5 text-sm font-semibold text-white">Sign in</button>
    </form>
  </div>
</dialog>
"#;

const FILLED_STAR: &str = r#"              <svg id="glyphicon glyphicon-star" class="h-5 w-5 flex-none" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true"><path d="M10 1.5l2.6 5.6 6.1.7-4.5 4.2 1.2 6L10 15l-5.4 3 1.2-6L1.3 7.8l6.1-.7z"/></svg>
"#;

const EMPTY_STAR: &str = r#"              <svg class="h-5 w-5 flex-none" viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.5" aria-hidden="true"><path d="M10 1.5l2.6 5.6 6.1.7-4.5 4.2 1.2 6L10 15l-5.4 3 1.2-6L1.3 7.8l6.1-.7z"/></svg>
"#;

/// The product page.
pub(crate) fn product_page(data: &PageData) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(HEAD);
    out.push_str("\n<nav class=\"bg-gray-800\">\n  <div class=\"container mx-auto flex h-16 items-center justify-between px-4\">\n");
    out.push_str("    <a href=\"#\" class=\"text-white px-3 py-2 text-lg font-medium\" aria-current=\"page\">BookInfo Sample</a>\n");
    if data.user.is_empty() {
        out.push_str(
            "    <button type=\"button\" id=\"sign-in-button\" class=\"rounded-md bg-blue-600 px-3.5 py-2.5 text-sm \
             font-semibold text-white\">Sign in</button>\n",
        );
    } else {
        let _ = write!(
            out,
            "    <div class=\"flex items-center\">\n      <img class=\"inline-block h-9 w-9 rounded-full\" \
             src=\"/static/img/izzy.png\" alt=\"\">\n      <div class=\"ml-4\">\n        \
             <p class=\"text-base font-medium text-gray-50\">{}</p>\n        <a href=\"logout\" \
             class=\"text-xs font-medium text-gray-400 hover:text-gray-300\">Sign out</a>\n      </div>\n    </div>\n",
            escape(data.user)
        );
    }
    out.push_str("  </div>\n</nav>\n");
    out.push_str(SIGN_IN_DIALOG);

    let _ = write!(
        out,
        "\n<div class=\"container mt-8 mx-auto px-4\">\n  <h1 class=\"text-5xl font-bold tracking-tight \
         text-blue-900\">{}</h1>\n  <p class=\"mt-6 text-xl leading-8 text-gray-600\">{}</p>\n</div>\n",
        escape(data.product_title),
        data.product_description_html
    );

    out.push_str("\n<div class=\"container mt-8 mx-auto px-4 py-10\">\n");
    if data.details_status == 200 {
        let d = data.details;
        let _ = write!(
            out,
            "  <h4 class=\"text-3xl font-semibold\">Book Details</h4>\n  <table class=\"min-w-full divide-y \
             divide-gray-300\">\n    <thead><tr><th>ISBN-10</th><th>Publisher</th><th>Pages</th><th>Type</th>\
             <th>Language</th></tr></thead>\n    <tbody><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             </tr></tbody>\n  </table>\n",
            field(d, "ISBN-10"),
            field(d, "publisher"),
            field(d, "pages"),
            field(d, "type"),
            field(d, "language")
        );
    } else {
        error_block(&mut out, "Error fetching product details", data.details);
    }
    out.push_str("</div>\n");

    out.push_str("\n<div class=\"bg-blue-600/5 py-12 mx-auto\">\n  <div class=\"container mx-auto px-4\">\n");
    if data.reviews_status == 200 {
        reviews_block(&mut out, data.reviews);
    } else {
        error_block(&mut out, "Error fetching product reviews", data.reviews);
    }
    out.push_str("  </div>\n</div>\n");
    out
}

fn error_block(out: &mut String, heading: &str, body: &Value) {
    let _ = writeln!(out, "  <p class=\"text-2xl text-red-500\">{heading}</p>");
    if body.truthy() {
        let _ = writeln!(
            out,
            "  <p class=\"text-lg text-gray-600\">{}</p>",
            field(body, "error")
        );
    }
}

fn reviews_block(out: &mut String, reviews: &Value) {
    out.push_str("    <h4 class=\"text-3xl font-semibold\">Book Reviews</h4>\n    <div class=\"flex flex-col md:flex-row\">\n");
    let list = match reviews.get("reviews") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    let podname = field(reviews, "podname");
    let cluster = reviews.get("clustername");
    for review in list {
        out.push_str("      <section class=\"px-6 py-12\">\n");
        if let Some(rating) = review.get("rating").filter(|r| r.truthy()) {
            match rating.get("stars").filter(|s| s.truthy()) {
                Some(stars) => {
                    let n = stars.as_int().unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "            <div class=\"flex gap-x-1 text-{}-500\">",
                        field(rating, "color")
                    );
                    for _ in 0..n.clamp(0, 1000) {
                        out.push_str(FILLED_STAR);
                    }
                    for _ in 0..(5 - n).clamp(0, 1000) {
                        out.push_str(EMPTY_STAR);
                    }
                    out.push_str("            </div>\n");
                }
                None => {
                    if rating.get("error").is_some_and(Value::truthy) {
                        let _ = writeln!(
                            out,
                            "            <p class=\"text-red-500\">{}</p>",
                            field(rating, "error")
                        );
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "        <blockquote class=\"mt-10 text-xl font-semibold text-gray-900\">\n          \
             <p>\"{}\"</p>\n        </blockquote>\n        <div class=\"font-semibold text-gray-900\">{}</div>",
            field(review, "text"),
            field(review, "reviewer")
        );
        let _ = write!(
            out,
            "        <div class=\"mt-0.5 text-gray-600 font-mono\">Reviews served by: \n          {podname}\n"
        );
        if cluster.map(Value::python_str).as_deref() != Some("null") {
            let _ = writeln!(
                out,
                "          on cluster <div>{}</div>",
                field(reviews, "clustername")
            );
        }
        out.push_str("        </div>\n      </section>\n");
    }
    out.push_str("    </div>\n");
}

/// The intro page at `/` with the service tree and links to the product page.
pub(crate) fn index(details_url: &str, reviews_url: &str, ratings_url: &str) -> String {
    format!(
        "<meta charset=\"utf-8\">\n<link rel=\"stylesheet\" href=\"static/tailwind/tailwind.css\">\n\
         <div class=\"container mx-auto px-4 py-8\">\n  <h3 class=\"text-3xl font-bold\">Hello! This is a simple \
         bookstore application consisting of three services as shown below</h3>\n  <table class=\"table \
         table-condensed table-bordered table-hover\">\n    <tr><th>name</th><td>{details}</td></tr>\n    \
         <tr><th>endpoint</th><td>details</td></tr>\n    <tr><th>children</th><td><table class=\"table\">\n      \
         <tr><th>name</th><th>endpoint</th><th>children</th></tr>\n      <tr><td>{details}</td><td>details</td>\
         <td></td></tr>\n      <tr><td>{reviews}</td><td>reviews</td><td><table class=\"table\"><tr><th>name</th>\
         <th>endpoint</th><th>children</th></tr><tr><td>{ratings}</td><td>ratings</td><td></td></tr></table>\
         </td></tr>\n    </table></td></tr>\n  </table>\n  <p>Click on one of the links below to auto generate a \
         request to the backend as a real user or a tester</p>\n  <p><a href=\"/productpage?u=normal\">Normal \
         user</a></p>\n  <p><a href=\"/productpage?u=test\">Test user</a></p>\n</div>\n",
        details = escape(details_url),
        reviews = escape(reviews_url),
        ratings = escape(ratings_url),
    )
}

/// Werkzeug's error page for `status`.
pub(crate) fn werkzeug_error(status: u16) -> String {
    let (title, text) = match status {
        404 => (
            "Not Found",
            "The requested URL was not found on the server. If you entered the URL manually please check your \
             spelling and try again.",
        ),
        405 => (
            "Method Not Allowed",
            "The method is not allowed for the requested URL.",
        ),
        _ => (
            "Internal Server Error",
            "The server encountered an internal error and was unable to complete your request. Either the server \
             is overloaded or there is an error in the application.",
        ),
    };
    format!(
        "<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{text}</p>\n"
    )
}

/// Werkzeug's redirect page.
pub(crate) fn redirect(location: &str) -> String {
    let l = escape(location);
    format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be \
         redirected automatically to the target URL: <a href=\"{l}\">{l}</a>. If not, click the link.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(user: &str, reviews: &str, details_status: u16) -> String {
        let details =
            Value::parse(br#"{"ISBN-10":"1234567890","publisher":"PublisherA","pages":200}"#).unwrap();
        let reviews = Value::parse(reviews.as_bytes()).unwrap();
        product_page(&PageData {
            user,
            product_title: "The Comedy of Errors",
            product_description_html: "<b>x</b>",
            details_status,
            details: &details,
            reviews_status: 200,
            reviews: &reviews,
        })
    }

    #[test]
    fn stars_are_counted_and_coloured() {
        let html = page(
            "",
            r#"{"podname":"p","clustername":"null","reviews":[{"reviewer":"R1","text":"t","rating":{"stars":5,"color":"red"}},{"reviewer":"R2","text":"u","rating":{"stars":4,"color":"red"}}]}"#,
            200,
        );
        assert_eq!(html.matches("glyphicon glyphicon-star").count(), 9);
        assert_eq!(html.matches("fill=\"none\" stroke=\"currentColor\"").count(), 1);
        assert!(html.contains("<div class=\"flex gap-x-1 text-red-500\">"));
        assert!(html.contains("<title>Simple Bookstore App</title>"));
        assert!(html.contains("id=\"sign-in-button\""));
        assert!(html.contains("<td>PublisherA</td>"));
        assert!(!html.contains("on cluster"));
    }

    #[test]
    fn rating_error_and_user_and_cluster() {
        let html = page(
            "jason",
            r#"{"podname":"p","clustername":"c1","reviews":[{"reviewer":"R1","text":"say \"hi\"","rating":{"error":"Ratings service is currently unavailable"}}]}"#,
            503,
        );
        assert!(html.contains("<p class=\"text-red-500\">Ratings service is currently unavailable</p>"));
        assert!(html.contains("<p class=\"text-base font-medium text-gray-50\">jason</p>"));
        assert!(html.contains("<a href=\"logout\""));
        assert!(html.contains("on cluster <div>c1</div>"));
        assert!(html.contains("<p>\"say &#34;hi&#34;\"</p>"));
        assert!(html.contains("<p class=\"text-2xl text-red-500\">Error fetching product details</p>"));
        assert!(!html.contains("id=\"sign-in-button\""));
    }
}
