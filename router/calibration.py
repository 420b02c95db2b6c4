"""The prompts the int8 encoder is calibrated on when no others are given (router/quantization.py).

Written for this purpose, not taken from any dataset, so they ship with the package and every
machine builds the same int8 model. They cover what a gateway sees and the router was trained on:
multiple-choice exam questions, word problems, code with its symbols, mathematics in LaTeX, chat,
writing, short lookups and greetings, other languages and scripts, and prompts past the 128 word
pieces the router reads. Calibration only measures activation ranges, so coverage matters more than
count (bench/encoder_precision.py compares these with prompts drawn from the shared data).
"""

from __future__ import annotations

_CODE = """Why does this function return None for some inputs, and how would you fix it?

```python
def find_user(users: list[dict], name: str) -> dict | None:
    for user in users:
        if user["name"].lower() == name.lower():
            return user
        else:
            return None
```"""

_SQL = """Rewrite this query so it uses a window function instead of a correlated subquery, and say
which indexes would help:
SELECT o.id, o.customer_id, o.total FROM orders o
WHERE o.total > (SELECT AVG(total) FROM orders WHERE customer_id = o.customer_id);"""

_JS = """My React component re-renders forever. What is wrong?
function Clock() { const [t, setT] = useState(Date.now()); setT(Date.now()); return <p>{t}</p>; }"""

_LONG_ESSAY = (
    "I run a small bakery with four employees and I want to start selling online. Our best sellers "
    "are sourdough loaves, cinnamon rolls and seasonal fruit tarts, and most customers live within "
    "ten kilometres. I have no website yet, a modest budget, and no one on the team knows much "
    "about marketing. Please write a step-by-step plan for the first six months: which platform to "
    "use, how to handle delivery versus pick-up, how to photograph the products, how to price "
    "shipping, which legal and food-safety rules usually apply to selling food online, how to "
    "collect reviews, and how to measure whether it is working. Keep it practical, estimate costs "
    "where you can, and point out the mistakes small shops most often make when they move online."
)

_LONG_MATH = (
    "Let $f:[0,1]\\to\\mathbb{R}$ be continuous with $f(0)=f(1)$. Prove that for every positive "
    "integer $n$ there exist $x\\in[0,1-1/n]$ such that $f(x+1/n)=f(x)$. Then show that the claim "
    "fails when $1/n$ is replaced by a number $h\\in(0,1)$ that is not of that form, by "
    "constructing an explicit counterexample such as $f(x)=\\sin^2(\\pi x/h)-x\\sin^2(\\pi/h)$, "
    "and verify each step of the construction carefully, including the boundary values and the "
    "continuity."
)

_LONG_MCQ = (
    "A 45-year-old patient presents with fatigue, weight gain, cold intolerance and constipation "
    "for six months. Examination shows dry skin, a slow pulse of 52 beats per minute and delayed "
    "relaxation of the ankle reflexes. Laboratory tests show a raised TSH and a low free T4. Which "
    "of the following is the most likely cause in an iodine-sufficient region?\nA. Graves' "
    "disease\nB. Hashimoto's thyroiditis\nC. Pituitary adenoma\nD. Subacute granulomatous "
    "thyroiditis\nAnswer:"
)

CALIBRATION_PROMPTS: tuple[str, ...] = (
    "hi",
    "Thanks!",
    "What is the capital of Australia?",
    "Who wrote One Hundred Years of Solitude?",
    "How many ounces are in a pound?",
    "Translate 'where is the train station' into French.",
    "Give me three synonyms for 'quick'.",
    "Is a tomato a fruit or a vegetable?",
    "What year did the Berlin Wall fall?",
    "Spell 'necessary' backwards.",
    "Question: Which planet has the most moons?\nA. Earth\nB. Mars\nC. Saturn\nD. Venus\nAnswer:",
    "The following are multiple choice questions about economics.\n\nIf the central bank raises "
    "interest rates, which is most likely in the short run?\nA. Higher inflation\nB. A weaker "
    "currency\nC. Lower investment\nD. Higher bond prices\nAnswer:",
    "Which of these is a prime number?\n(A) 21 (B) 27 (C) 29 (D) 33",
    "Question: In contract law, what is consideration?\nA. A promise without value\nB. Something "
    "of value exchanged\nC. A written signature\nD. A court order\nAnswer:",
    _LONG_MCQ,
    "Janet has 3 boxes with 12 eggs each. She uses 7 eggs for a cake and sells the rest at $0.25 "
    "each. How much money does she make?",
    "A train leaves at 14:35 and arrives at 18:10. How long is the journey in minutes?",
    "If 3x + 7 = 22, what is x? Show your work.",
    "A rectangle's length is twice its width and its perimeter is 54 cm. Find its area.",
    "Compute the derivative of $g(x) = x^3 \\ln(x) - e^{2x}\\cos x$.",
    "Evaluate $\\int_0^{\\pi} x \\sin x \\, dx$ and explain the integration by parts.",
    "Prove that the square root of 2 is irrational.",
    _LONG_MATH,
    "Write a Python function that returns the n-th Fibonacci number in O(log n) time.",
    _CODE,
    _SQL,
    _JS,
    "Implement a thread-safe bounded queue in Java with put and take that block.",
    "def merge(a, b):\n    # merge two sorted lists\n    pass\n\nComplete the function and add "
    "doctests.",
    "What does `git rebase -i HEAD~3` do, and when should I avoid it?",
    'Parse this JSON and list the keys: {"id": 17, "tags": ["a", "b"], "owner": {"name": null}}',
    "Explain the difference between TCP and UDP to a beginner.",
    "How do vaccines train the immune system?",
    "Summarise the causes of the French Revolution in five bullet points.",
    "Write a haiku about autumn rain.",
    "Write a short, polite email declining a meeting invitation next Tuesday.",
    "Draft a cover letter for a junior data analyst position; I know SQL, Excel and some Python.",
    "My manager keeps changing priorities every week. How can I push back without conflict?",
    "Give me a 3-day itinerary for Lisbon on a budget.",
    "What are the pros and cons of renting versus buying a flat?",
    "Rewrite this sentence to sound more formal: gonna need that report asap, thx",
    "Tell me a joke about programmers 🙂",
    _LONG_ESSAY,
    "¿Cuál es la diferencia entre 'ser' y 'estar'? Dame ejemplos.",
    "Erkläre mir bitte den Unterschied zwischen Wetter und Klima.",
    "Объясни, как работает сборщик мусора в Java.",
    "请用简单的语言解释什么是区块链。",
    "日本語で自己紹介の例文を書いてください。",
    "Quelle est la meilleure façon d'apprendre une langue étrangère ?",
    "Visit https://example.com/docs/v2/api?lang=en#auth and tell me what OAuth scopes are.",
)
