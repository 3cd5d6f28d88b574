"""Template miner: find prompt templates filled with many different contents.

A *template sweep* sends one prompt template ("given the passage: {p} answer the question: {q}")
filled with thousands of contents. The variable part is often long, so embeddings do not group
these prompts; the shared fixed text does. This package finds that fixed text.

Approach (all heavy grouping in DuckDB, vector work in numpy, no per-pair Python loops):

1. Tokenise every prompt on words and punctuation and hash every token ``n``-gram to an int64
   (numpy, per chunk of prompts so memory stays bounded). The distinct ``(prompt, n-gram)``
   pairs go to a DuckDB table, which spills to disk when large.
2. Keep the n-grams that occur in at least ``min_prompts`` prompts and group them into
   *classes*: n-grams with exactly the same set of prompts (compared by an order-free
   fingerprint of the posting list). All n-grams of a template's fixed text occur in exactly the
   template's prompts, so a whole anchor text (however many n-grams) becomes one class; a passage
   reused by a few prompts, a phrase shared by sibling templates or a common organic phrase each
   become classes of their own, separate from the template text even when they touch it.
3. Greedy cover, frames first, then largest class first: a class (its prompts not yet assigned)
   is a candidate template; its fixed text is the closure, every class held by >= ``closure_share``
   of the members (so an optional phrase does not split it). Template text occurs in every member,
   so it comes before content reused by a few prompts. Classes that start or end most of their
   prompts (frames) go before the others, whatever their size: a stock sentence pasted by
   thousands of users inside their documents would otherwise take every prompt holding it,
   including a campaign's instruction wrapped around such documents. Before accepting, classes
   nested inside the group (>= ``nested_share`` of their prompts in it) that together cover the
   group split it first: sibling templates sharing a long preamble each keep their own text.
4. Each group is validated: enough members, real variable content (enough distinct prompts: a
   family of exact copies is not a template), a substantial fixed part, a long enough longest
   anchor, a longer fixed part for a single floating anchor (short common phrases float
   anywhere in organic text), and not reused content (most members holding a bigger multi-n-gram
   text elsewhere that frames them, i.e. their real template). Rejected groups leave their prompts
   free for smaller classes. Prompts still free are then tried as *label templates*
   ("summarize: {0}").
5. Each template's anchors (maximal runs of covered tokens) are read from one representative
   member and rendered as a pattern with numbered slots.

A package rather than sibling modules of ``engine/detect``: the three parts serve only this miner and
share its private types (the pair arrays, the cover state), and ``detect/`` holds one module per
detection signal; callers keep importing ``engine.detect.templates``. Modules, lower first:

- :mod:`.params`: :class:`TemplateParams`, the miner's thresholds as one frozen value;
- :mod:`.ngrams`: steps 1-2, tokenising, n-gram counting in DuckDB, the (prompt, class) pair arrays;
- :mod:`.render`: step 5, a template's text with numbered slots from an example member, :class:`Template`;
- :mod:`.cover`: steps 3-4, the greedy cover, validation, label templates, the prompt assignment;
- :mod:`.miner`: :func:`mine_templates`, which runs them in order, and its :class:`TemplateMining`.
"""

from engine.detect.templates.miner import TemplateMining, mine_templates
from engine.detect.templates.ngrams import PromptTexts, tokenize
from engine.detect.templates.params import TemplateParams
from engine.detect.templates.render import Template

__all__ = ["PromptTexts", "Template", "TemplateMining", "TemplateParams", "mine_templates", "tokenize"]
