// A finished debate's signed receipt: verdict, reason, signer, and a download of the JSON
// exactly as served (so `aragora receipt verify` accepts it byte for byte).

import { get } from "./api.js";
import { badge, codeBox, h, when } from "./dom.js";
import { errorNotice, loading } from "./notices.js";

export async function showReceipt(container, debateId) {
  container.replaceChildren(h("h3", {}, "Receipt"), loading("Loading the receipt"));
  const path = `/api/debates/${encodeURIComponent(debateId)}/receipt`;
  let bytes;
  try {
    bytes = await get(path, { raw: "bytes" });
  } catch (error) {
    container.replaceChildren(h("h3", {}, "Receipt"), errorNotice(error));
    return;
  }
  const signed = JSON.parse(new TextDecoder().decode(bytes));
  const receipt = signed.receipt;
  const filename = `receipt-${debateId}.json`;
  const download = h("button", { type: "button", class: "primary" }, "Download receipt (JSON)");
  download.addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/json" }));
    const link = h("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  container.replaceChildren(
    h("h3", {}, "Receipt"),
    h(
      "p",
      { class: "verdict", dataset: { verdict: receipt.verdict } },
      "Verdict ",
      badge(receipt.verdict),
      ` — ${receipt.verdict_reason}`,
    ),
    h(
      "p",
      { class: "hint" },
      `Signed ${signed.algorithm} by key ${signed.key_id}, issued ${when(receipt.issued_at)}; `,
      `provenance root ${String(receipt.provenance_root).slice(0, 16)}… over ${receipt.provenance.length} events.`,
    ),
    h("div", { class: "row" }, download),
    h("p", { class: "hint" }, "Check it offline:"),
    codeBox(`aragora receipt verify ${filename} --public-key ${signed.public_key}`, "the verify command"),
  );
}
