// Answers as Markdown (marked, sanitised by DOMPurify), with their citations made into links.
import { marked } from "./marked.esm.js";
import DOMPurify from "./purify.es.js";

marked.setOptions({ gfm: true, breaks: false });

export function renderMarkdown(node, text, citations = [], onCitation = null) {
  node.innerHTML = DOMPurify.sanitize(marked.parse(text || ""));
  node.querySelectorAll("a[href]").forEach((a) => { a.target = "_blank"; a.rel = "noopener noreferrer"; });
  if (citations.length) linkCitations(node, citations, onCitation);
}

// Replace each citation's text (outside code) with a link that opens its passage.
function linkCitations(root, citations, onCitation) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest("code, pre, a") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  const sorted = [...citations].sort((a, b) => b.text.length - a.text.length);
  for (const textNode of nodes) {
    let rest = textNode.textContent;
    const parts = [];
    for (;;) {
      let first = null;
      let at = rest.length;
      for (const citation of sorted) {
        const index = rest.indexOf(citation.text);
        if (index >= 0 && index < at) { at = index; first = citation; }
      }
      if (!first) break;
      parts.push(document.createTextNode(rest.slice(0, at)), citationLink(first, onCitation));
      rest = rest.slice(at + first.text.length);
    }
    if (!parts.length) continue;
    parts.push(document.createTextNode(rest));
    textNode.replaceWith(...parts);
  }
}

function citationLink(citation, onCitation) {
  const link = document.createElement("a");
  link.className = citation.exists ? "citation" : "citation missing";
  link.textContent = citation.text;
  if (!citation.exists) {
    link.title = "this citation does not match any passage the model was given";
    return link;
  }
  link.href = "#";
  link.title = "open the cited passage";
  link.addEventListener("click", (event) => { event.preventDefault(); if (onCitation) onCitation(citation); });
  return link;
}
