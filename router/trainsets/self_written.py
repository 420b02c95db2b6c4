"""The self-written training set: plainly simple and plainly demanding requests, labelled by hand.

Run ``python -m router.trainsets.self_written OUT.jsonl`` to regenerate ``self_written.jsonl``.
Every prompt fragment below was written for Tiergate by the team (no benchmark text): short
requests are listed whole, and requests that carry a text (rewrite, translate, summarise, extract)
join a hand-written task frame to a hand-written passage, drawn with a fixed seed. The topics were
chosen apart from the common-sense evaluation set (router/evalsets/common_sense.jsonl), and
training checks that no evaluation prompt comes within cosine 0.9 of a training prompt.

Rows are in the generic outcome format (router/data.py): a person's judgement stands in for the
outcomes, ``weak`` = ``strong`` = 1 for a simple request (the small tier serves it) and ``weak`` =
0, ``strong`` = 1 for a demanding one. ``label`` and ``kind`` say which list a row came from.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SOURCE = "tiergate/self-written"
SEED = 20251201

GREETINGS = [
    "Hello!",
    "Hi, nice to meet you.",
    "Good evening!",
    "Hey there, how's it going?",
    "Morning! Ready for another day?",
    "Hiya",
    "Greetings from Toronto!",
    "Good afternoon to you.",
    "Hi, it's me again.",
    "Hello, anyone there?",
    "Howdy!",
    "Hi! I'm new here, just saying hello.",
    "Hey friend, long time no see.",
    "Bonjour!",
    "Hi, can you hear me?",
    "Hello, hello! Testing, testing.",
    "Good night, talk tomorrow.",
    "Hey! How was your weekend?",
    "Hi, I hope you're having a lovely Sunday.",
    "Yo, how are things?",
]
THANKS = [
    "Thanks!",
    "Cheers, much appreciated.",
    "Perfect, thank you.",
    "That's great, thanks for the quick answer.",
    "Awesome, bye!",
    "Okay, got it.",
    "Thank you, have a nice day!",
    "You're a lifesaver, thanks.",
    "Bye for now.",
    "Many thanks for explaining the oven timer, it works now and dinner is saved.",
    "Thanks, that's all I needed today.",
    "Brilliant, thank you kindly.",
    "Got it, thanks a bunch!",
    "Thank you! The printer is working again after I restarted it like you said.",
    "Appreciate it, see you later.",
    "Nice one, thanks.",
    "Thanks for your patience with all my questions today, you've been very helpful.",
    "Ok cool, thank you.",
]
FACTS = [
    "Is the Sun a star?",
    "Is Canada bigger than Mexico?",
    "Does the Moon orbit the Earth?",
    "Is Spanish the main language of Brazil?",
    "How many continents are there?",
    "What is the freezing point of water in Fahrenheit?",
    "Is a whale a mammal?",
    "Which planet is closest to the Sun?",
    "How many legs does an insect have?",
    "Is Tokyo in Japan?",
    "What language do people speak in Austria?",
    "How many hours are in a day?",
    "Is 17 an odd number?",
    "What is the chemical symbol for water?",
    "Is the Nile in Africa?",
    "What colour is a ripe banana?",
    "Is ice lighter than liquid water?",
    "How many sides does a hexagon have?",
    "Is the Amazon a river in South America?",
    "Do penguins live at the North Pole?",
    "How many players are on a football (soccer) team on the field?",
    "Is a kilogram more than a pound?",
    "What is the largest planet in our solar system?",
    "Is Saturday part of the weekend?",
    "Are strawberries red when they are ripe?",
    "How many months have 31 days?",
    "Is copper a metal?",
    "Which is bigger, a cat or an elephant?",
    "What gas do humans breathe out?",
    "Is Berlin in Germany? Yes or no.",
    "Do cows eat grass?",
    "How many weeks are in a year?",
]
WORDS = [
    "What's another word for 'big'?",
    "What does 'ubiquitous' mean?",
    "Give me a word that rhymes with 'cat'.",
    "What is the plural of 'mouse'?",
    "What's the antonym of 'ancient'?",
    "Use the word 'serendipity' in a sentence.",
    "Which is correct: 'its raining' or 'it's raining'?",
    "How do you spell the past tense of 'swim'?",
    "What is a noun? One sentence please.",
    "Is 'colour' British or American spelling?",
    "What's a polite way to say 'I don't know'?",
    "What does the abbreviation 'ASAP' stand for?",
]
SHORT_WRITING = [
    "Write a thank-you note to my neighbour for watering my plants while I was away.",
    "Suggest a name for a goldfish.",
    "Give me a caption for a photo of my dog at the beach.",
    "Write a text message telling my partner I'll be ten minutes late.",
    "Write a two-line poem about rain.",
    "Suggest three names for a cosy coffee shop.",
    "Write a one-sentence congratulations message for a friend who passed her driving test.",
    "Write a short note to my son's teacher saying he will miss school on Friday for a doctor's "
    "visit.",
    "Give me a fun fact about octopuses.",
    "Write a friendly reminder for my roommates to take out the recycling on Wednesday.",
    "Write a get-well-soon message for a colleague.",
    "Suggest a title for my holiday photo album from Greece.",
    "Write a short welcome message for new members of our gardening club.",
    "Give me a simple tongue twister.",
    "Write an invitation text for a barbecue at my place on Saturday at 5.",
    "Tell me a short joke about cats.",
]
CLASSIFY = [
    "Is 'I love this phone, the camera is amazing' positive or negative?",
    "Which of these are animals: table, horse, chair, eagle, lamp?",
    "Is this a question or a statement: 'The train is late again.'",
    "Which of these words are verbs: run, blue, jump, quickly, eat?",
    "Sort these into hot and cold drinks: iced tea, espresso, lemonade, hot chocolate, smoothie.",
    "Is this email spam? 'Congratulations! You have won a free cruise, click here to claim now!'",
    "Is the following sentence in English or in Dutch? 'Ik woon in een klein huis.'",
    "Label each city with its country: Madrid, Lyon, Munich, Naples.",
    "Which of these numbers are even: 3, 8, 11, 14, 27, 30?",
    "Is the tone of 'Whatever, do what you want' friendly or annoyed?",
]
FORMAT_TASKS = [
    "Sort alphabetically: pear, apple, mango, kiwi, cherry.",
    "Convert to uppercase: please keep the door closed",
    "Make a numbered list of these chores: vacuum, dishes, laundry, water plants.",
    "Turn this into CSV with a header row: Oslo Norway 709000; Bergen Norway 286000; Aarhus "
    "Denmark 285000",
    "Write the number 1,250 in words.",
    "Put these days in order: Friday, Monday, Wednesday, Sunday.",
    "Change this date to the format YYYY-MM-DD: 3 February 2024",
    "Remove the extra spaces from this sentence: 'The   cat   sat   on the    mat.'",
    "Convert these temperatures to a markdown list: Monday 18C, Tuesday 21C, Wednesday 17C.",
    "Make this a title in title case: a guide to growing tomatoes on your balcony",
    "Turn these key-value pairs into JSON: name = Lena, role = designer, team = mobile, "
    "start = 2022",
    "Join these words into one sentence: cat, garden, sleeping, sunny.",
    "Reverse the order of this list: red, orange, yellow, green, blue.",
    "Write these prices with a euro sign and two decimals: 3, 4.5, 12, 0.99",
]
# Short requests that carry a bit of text; kept whole.
SMALL_TEXT_TASKS = [
    "Correct the grammar: 'Me and him goes to the cinema every fridays.'",
    "Make this sentence shorter: 'At this point in time we are currently in the process of "
    "reviewing your application.'",
    "Translate 'good luck with your exam' into Portuguese.",
    "What is the German word for 'library'?",
    "Say 'see you tomorrow' in Dutch.",
    "Rewrite 'u r late again lol' in proper English.",
    "Make this more cheerful: 'The picnic is cancelled because of the rain.'",
    "Turn this into a question: 'The shop opens at nine.'",
    "Translate 'Where can I buy a bus ticket?' into Greek.",
    "Paraphrase: 'The results exceeded our expectations.'",
]

# School-level quiz questions with options: a lookup a person would leave to the small tier.
QUIZ = [
    "Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn",
    "What do bees make?\nA. Milk\nB. Silk\nC. Honey\nD. Wax paper",
    "How many days are there in a week?\nA. 5\nB. 6\nC. 7\nD. 8",
    "Which animal is known for its long neck?\nA. Giraffe\nB. Zebra\nC. Lion\nD. Rabbit",
    "What is the opposite of 'cold'?\n(A) wet (B) hot (C) dark (D) soft",
    "Which of these is a primary colour?\nA. Green\nB. Purple\nC. Red\nD. Orange",
    "Which ocean lies between Europe and North America?\nA. Indian\nB. Arctic\nC. Pacific\n"
    "D. Atlantic",
    "What is the capital of Italy?\nA. Milan\nB. Rome\nC. Venice\nD. Florence",
    "Which of these is a mammal?\nA. Shark\nB. Dolphin\nC. Trout\nD. Octopus",
    "Water is made of hydrogen and which other element?\nA. Carbon\nB. Nitrogen\nC. Oxygen\n"
    "D. Helium",
    "Which season comes after winter?\nA. Autumn\nB. Summer\nC. Spring",
    "What do plants need from the air to make food?\nA. Oxygen\nB. Carbon dioxide\n"
    "C. Nitrogen\nD. Argon",
    "Which instrument has black and white keys?\nA. Violin\nB. Drum\nC. Piano\nD. Flute",
    "Who painted the Mona Lisa?\nA. Picasso\nB. Leonardo da Vinci\nC. Van Gogh\nD. Monet",
    "How many sides does a triangle have?\nA. 2\nB. 3\nC. 4\nD. 5",
    "Which is the largest animal on Earth?\nA. Elephant\nB. Blue whale\nC. Giraffe\n"
    "D. Great white shark",
    "What is the main language spoken in Mexico?\nA. Portuguese\nB. English\nC. Spanish\nD. French",
    "Which of these is used to measure temperature?\nA. Ruler\nB. Scale\nC. Thermometer\n"
    "D. Compass",
    "Choose the correct spelling: A. recieve B. receive C. receeve D. riceive",
    "Which continent is Egypt in?\nA. Asia\nB. Europe\nC. Africa\nD. South America",
    "Which gas do plants release during the day?\nA. Oxygen\nB. Carbon monoxide\nC. Methane",
    "Which unit is used to measure length?\nA. Litre\nB. Kilogram\nC. Metre\nD. Second",
    "Which of these foods comes from a cow?\nA. Cheese\nB. Bread\nC. Rice\nD. Apples",
    "True or false: the Earth goes around the Sun once a year.",
]
# Professional-level questions with options: a person would send them to the capable tier.
EXPERT_QUIZ = [
    "A 45-year-old man has sudden tearing chest pain radiating to the back and unequal blood "
    "pressure in the arms. Which is the most appropriate next test?\nA. Exercise ECG\n"
    "B. CT angiography of the chest\nC. Chest X-ray only\nD. Serum lipase",
    "Under the doctrine of promissory estoppel, which element must the promisee show?\n"
    "A. Consideration was paid\nB. Reasonable, detrimental reliance on the promise\n"
    "C. The promise was in writing\nD. The promisor was a merchant",
    "For a beam with a fixed support at one end and a point load at the free end, where is the "
    "bending moment largest?\nA. At the load\nB. At mid-span\nC. At the fixed support\n"
    "D. It is constant",
    "Which of the following best explains why a firm in perfect competition earns zero economic "
    "profit in the long run?\nA. Price controls\nB. Free entry and exit\nC. Economies of "
    "scale\nD. Product differentiation",
    "A patient taking lithium starts a thiazide diuretic. What is the main risk?\nA. Lithium "
    "toxicity\nB. Hypoglycaemia\nC. Reduced lithium levels\nD. Hyperkalaemia",
    "In a company's cash flow statement, where does the purchase of a factory appear, and how does "
    "depreciation of it affect operating cash flow? Choose and explain: A. Financing, reduces it "
    "B. Investing, added back C. Operating, reduces it D. Investing, reduces it",
    "Which statement about the eigenvalues of a real orthogonal matrix is always true?\n"
    "A. They are all 1\nB. They have absolute value 1\nC. They are all real\nD. They sum to 0",
    "Under the GDPR, which is NOT a lawful basis for processing personal data?\nA. Consent\n"
    "B. Legitimate interests\nC. Commercial convenience\nD. Legal obligation",
    "In a second-order chemical reaction, doubling the concentration of the reactant changes the "
    "initial rate by what factor, and why?\nA. 2\nB. 4\nC. 8\nD. It does not change",
    "Which mechanism explains the resistance of MRSA to beta-lactam antibiotics?\n"
    "A. Efflux pumps\nB. Altered penicillin-binding protein PBP2a\nC. Ribosomal methylation\n"
    "D. Porin loss",
    "In a two-phase commit protocol, what happens if the coordinator crashes after participants "
    "voted yes but before sending the decision?\nA. Participants abort\nB. Participants commit\n"
    "C. Participants block until recovery\nD. A new coordinator is elected automatically",
    "A contract clause limits damages to the fees paid. Which claim is most likely to escape the "
    "cap in most common-law courts?\nA. Late delivery\nB. Fraudulent misrepresentation\n"
    "C. Minor defects\nD. Loss of profits",
]
LOGIC_PUZZLES = [
    "Three friends, Ana, Ben and Cleo, each own one pet: a cat, a dog or a parrot. Ana does not "
    "own the dog. Ben owns neither the dog nor the parrot. Who owns which pet? Explain why.",
    "On an island, knights always tell the truth and knaves always lie. A says: 'B is a knave.' B "
    "says: 'A and I are of the same kind.' What are A and B?",
    "You have 12 coins, one of which is counterfeit and either heavier or lighter. With a balance "
    "scale and three weighings, how do you find it and tell whether it is heavier or lighter?",
    "Five houses in a row are painted different colours and owned by people of different "
    "jobs. The teacher lives in the red house, the green house is immediately left of the white "
    "one, the doctor lives in the first house, and the baker lives next to the blue house. Work "
    "out as much as you can and explain each step.",
    "A farmer must take a wolf, a goat and a cabbage across a river in a boat that holds only him "
    "and one item. The wolf eats the goat and the goat eats the cabbage if left alone. Give the "
    "shortest plan and prove that no shorter one exists.",
    "Four people must cross a bridge at night with one torch; at most two cross at a time. They "
    "take 1, 2, 5 and 10 minutes. What is the shortest total time, and why can't it be less?",
    "Six people sit at a round table. Dana sits between Eli and Fay, Gus sits directly "
    "opposite Dana, Hal is not next to Eli, and Ida sits to Gus's left. Find every seating "
    "that satisfies the rules.",
    "A clock shows 3:15. What is the angle between the hour and minute hands? Then find every "
    "time between 3:00 and 4:00 when the hands are at right angles.",
    "In a tournament every team plays every other team once. If 45 games were played, how many "
    "teams were there, and how many games would 16 teams need?",
    "Two trains leave stations 300 km apart at the same time, one at 70 km/h and one at 80 km/h, "
    "towards each other. A bird flies back and forth between them at 120 km/h until they meet. "
    "How far does the bird fly, and how would you compute it the long way?",
    "Using the digits 1 to 9 once each, fill a 3x3 grid so that every row, column and diagonal "
    "sums to 15, and explain why 5 must be in the centre.",
    "A says 'exactly one of us is lying', B says 'exactly two of us are lying', C says 'all three "
    "of us are lying'. Who is telling the truth?",
]

# Factual look-ups, often typed like a search query: the small tier answers or a large one would
# not know either (the shared data: natural_qa and trivia_qa gain nothing from the strong model).
LOOKUPS = [
    "who wrote the novel frankenstein",
    "when did the berlin wall fall",
    "What is the tallest mountain in Africa?",
    "who is the lead singer of coldplay",
    "what year did the titanic sink",
    "Who discovered penicillin?",
    "what is the currency of switzerland",
    "how tall is the eiffel tower",
    "who played harry potter in the films",
    "What is the longest river in Europe?",
    "when was the first iphone released",
    "Which country hosted the 2016 Summer Olympics?",
    "who invented the telephone",
    "what does dna stand for",
    "Who was the first person to walk on the Moon?",
    "what is the population of new zealand",
    "which band released the album abbey road",
    "Where is the Great Barrier Reef?",
    "who is the author of pride and prejudice",
    "what language is spoken in brazil",
    "When did World War II end?",
    "who directed the movie jaws",
    "what is the capital city of canada",
    "how many strings does a violin have",
    "Who painted The Starry Night?",
    "what sport does serena williams play",
    "which element has the symbol fe",
    "What is the national animal of Scotland?",
    "who composed the four seasons",
    "in which city is the colosseum",
    "What is the smallest country in the world?",
    "who sang rolling in the deep",
]

PASSAGES: list[tuple[str, list[str]]] = [
    (
        "Your parcel from Hill & Oak Furniture was due today, but the courier has reported a delay "
        "at the regional depot. The new delivery date is Thursday 14 March, between 8 am and "
        "1 pm. Your order number is HO-55102. You do not need to do anything; we will text you "
        "on the morning of delivery.",
        ["What is the new delivery date?", "What is the order number?"],
    ),
    (
        "The Riverside Summer Festival returns this year on the first weekend of August. Local "
        "bands will play on two stages, food trucks will line the promenade, and there will be a "
        "children's area with face painting and a puppet show. Entry is free, but parking near "
        "the river is limited, so visitors are asked to come by bus or bicycle.",
        ["When is the festival?", "How much does entry cost?"],
    ),
    (
        "Hi team, quick update: the quarterly all-hands moves from Tuesday to Wednesday at 11:00 "
        "in the main conference room. Lunch will be provided afterwards. Please send me any "
        "questions you want the directors to answer by Monday evening. Best, Ingrid",
        ["What day is the all-hands now?", "Who sent this message?"],
    ),
    (
        "To make the pancakes, whisk two eggs with 250 ml of milk, then add 125 g of flour and a "
        "pinch of salt. Let the batter rest for ten minutes. Heat a little butter in a pan and "
        "cook each pancake for about a minute on each side until golden.",
        ["How much flour is needed?", "How long should the batter rest?"],
    ),
    (
        "I ordered a pair of hiking boots in size 42 but received size 44. The box was also "
        "damaged and one lace was missing. I would like either the correct size or a full refund. "
        "I have attached a photo of the label. Order reference: TR-9931.",
        ["What size did the customer order?", "What does the customer want?"],
    ),
    (
        "Dear parents, the school will hold its annual science fair on Friday 10 May in the sports "
        "hall. Pupils from years 4 to 6 will present their projects from 9 am to noon. Parents "
        "are welcome to visit from 10:30. Please note that the car park will be closed that "
        "morning.",
        ["Which pupils present projects?", "From what time can parents visit?"],
    ),
    (
        "Junior graphic designer wanted for a small studio in Leeds. You will create social media "
        "posts, posters and simple brand guides for local clients. We are looking for someone "
        "with a good eye for typography and at least one year of experience with Figma or Adobe "
        "tools. Salary 24,000 to 27,000 GBP. Hybrid, three days in the office.",
        ["What is the salary range?", "Where is the studio?"],
    ),
    (
        "Tomorrow will start cloudy with light rain in the morning, clearing by early afternoon. "
        "Temperatures will reach 19 degrees, with a gentle westerly breeze. The evening should be "
        "dry and mild, and the weekend looks sunny.",
        ["Will it rain in the morning?", "What is the highest temperature?"],
    ),
    (
        "In Saturday's match, the Harbour City Sharks beat the Valley Foxes 3-1. Maya Okafor "
        "scored twice in the first half, and a late header from Lina Berg sealed the win. The "
        "Sharks move up to second place in the league.",
        ["What was the final score?", "Who scored twice?"],
    ),
    (
        "Notice to tenants: the water supply to the building will be switched off on Tuesday "
        "from 9 am to 3 pm while the plumbers replace the main valve. Please store some water in "
        "advance. We apologise for the inconvenience. Building management, Elm Court.",
        ["When will the water be off?", "Why is the water being switched off?"],
    ),
    (
        "The Westbrook library is extending its opening hours. From next month it will open at "
        "8 am on weekdays and stay open until 9 pm on Thursdays. The children's reading hour "
        "moves to Saturday mornings at 10.",
        ["What time will the library open on weekdays?", "When is the reading hour now?"],
    ),
    (
        "We stayed three nights at the Casa Azul guesthouse. The room was small but spotless, the "
        "breakfast on the terrace was lovely, and the owner gave us great tips for walks. The "
        "only downside was the noise from the street on Friday night.",
        ["How many nights did they stay?", "What was the downside?"],
    ),
    (
        "Biscuit is a two-year-old beagle looking for a new home. He is friendly with children "
        "and other dogs but not with cats. He loves long walks and needs a garden. He is "
        "vaccinated and microchipped. Contact the Willow Lane shelter to meet him.",
        ["How old is Biscuit?", "Is Biscuit good with cats?"],
    ),
    (
        "Hey, sorry I missed your call last night, my phone was on silent while I was at my "
        "cousin's wedding. Are we still on for tennis on Sunday? I can book the court for 10 if "
        "that works for you.",
        ["Why was the call missed?", "What time does the writer suggest?"],
    ),
    (
        "Starting Monday, the number 12 bus will no longer stop at Market Square because of road "
        "works. Passengers should use the temporary stop on Church Street, about 200 metres "
        "away. The change is expected to last six weeks.",
        ["Which bus is affected?", "How long will the change last?"],
    ),
    (
        "Thank you for booking with Seaview Hotel. Your reservation is confirmed for two adults "
        "from 21 to 24 June in a double room with a sea view. Check-in is from 3 pm and check-out "
        "is by 11 am. Breakfast is included.",
        ["What are the check-in and check-out times?", "Is breakfast included?"],
    ),
    (
        "Volunteers needed! The Green Streets group is cleaning up Oak Park this Sunday from 9 "
        "to 12. Gloves, bags and coffee will be provided. Just bring sturdy shoes and a good "
        "mood. Families are welcome.",
        ["What will be provided?", "When is the clean-up?"],
    ),
    (
        "Water tomato plants deeply twice a week rather than a little every day, so that the "
        "roots grow down. Add mulch around the base to keep the soil moist, and remove the small "
        "shoots that grow between the main stem and the branches.",
        ["How often should tomatoes be watered?", "Why add mulch?"],
    ),
    (
        "Found: a set of keys with a red keyring shaped like a strawberry, near the playground "
        "on Linden Avenue on Tuesday afternoon. They have been handed in at the corner bakery. "
        "Ask for Jonas.",
        ["Where were the keys found?", "Where can the owner collect them?"],
    ),
    (
        "The Fit Zone gym has updated its class timetable. Yoga is now on Mondays and Wednesdays "
        "at 7 pm, spinning moves to Tuesday mornings at 6:30, and the Saturday bootcamp starts "
        "half an hour earlier, at 9.",
        ["When is yoga?", "What time does the Saturday bootcamp start?"],
    ),
    (
        "Version 2.3 of the NoteNest app adds a dark mode, lets you pin notes to the top of a "
        "folder and fixes a bug where pictures were sometimes shown upside down. Update from the "
        "app store to get the new features.",
        ["What bug was fixed?", "What new features are there?"],
    ),
    (
        "My grandmother grew up in a small fishing village on the coast. Every morning she helped "
        "her father mend the nets before school, and in the summer she sold fresh sardines at "
        "the market with her sisters. She still talks about the smell of the sea and the sound "
        "of the gulls.",
        ["Where did the grandmother grow up?", "What did she sell at the market?"],
    ),
    (
        "Reminder: your annual car inspection is due by 30 September. You can book a slot online "
        "or call the service centre on 0161 555 0199. Please bring your registration documents "
        "and the car's service book.",
        ["When is the inspection due?", "What should be brought?"],
    ),
    (
        "Hi Sara, thanks for your interest in the flat on Cedar Road. It has two bedrooms, a "
        "small balcony and a newly fitted kitchen. The rent is 950 a month plus bills, and it "
        "is available from 1 October. Viewings are possible on weekday evenings.",
        ["How much is the rent?", "When is the flat available?"],
    ),
    (
        "Minutes: the committee agreed to buy new chairs for the community hall, postponed the "
        "decision on the new roof until the next meeting, and thanked Mrs Patel for organising "
        "the spring fair, which raised 1,800 pounds.",
        ["What did the committee agree to buy?", "How much did the spring fair raise?"],
    ),
    (
        "Our coffee machine on the third floor is broken again. Facilities say a technician will "
        "come on Thursday. Until then, please use the kitchen on the second floor, and remember "
        "to rinse your mugs.",
        ["Which coffee machine is broken?", "When will the technician come?"],
    ),
    (
        "The online course runs for six weeks, with one video lesson and one short quiz each "
        "week. There are no exams. Learners who complete all quizzes receive a certificate. The "
        "next group starts on 2 September and costs 49 dollars.",
        ["How long is the course?", "How much does it cost?"],
    ),
    (
        "Dear customer, we noticed a login to your account from a new device in Lisbon on "
        "Saturday at 22:14. If this was you, there is nothing to do. If not, please reset your "
        "password and contact our support team.",
        ["Where was the login from?", "What should the customer do if it was not them?"],
    ),
    (
        "The little bakery on Rose Street has been run by the same family for sixty years. Its "
        "cinnamon buns sell out by ten every morning, and on Fridays there is a queue down the "
        "street for the rye bread.",
        ["How long has the bakery been run by the family?", "What sells out by ten?"],
    ),
    (
        "I'm writing to cancel my membership of the photography club from the end of this month, "
        "as I am moving to another city for work. I have really enjoyed the outings and the "
        "workshops, and I hope to visit when I'm back in town.",
        ["Why is the writer cancelling?", "When does the cancellation take effect?"],
    ),
]
TEXT_FRAMES = [
    "Summarise this in one sentence: '{text}'",
    "Give me a short summary of the following:\n\n{text}",
    "TL;DR: {text}",
    "Translate into Spanish: '{text}'",
    "Translate the following into French:\n\n{text}",
    "Please translate this into German: {text}",
    "Rewrite this in a more formal tone: '{text}'",
    "Make this sound friendlier: '{text}'",
    "Fix any spelling or grammar mistakes in this text: {text}",
    "Turn this into bullet points:\n\n{text}",
    "Give this text a short title: '{text}'",
    "Is the tone of this message positive, negative or neutral? '{text}'",
    "Rewrite this for a ten-year-old: '{text}'",
    "Shorten this to under 25 words: {text}",
    "Extract the key facts from this text as JSON: {text}",
    "List every number mentioned in this text: '{text}'",
    "Read this and answer the question.\n\n{text}\n\nQuestion: {ask}",
    "{text}\n\n{ask}",
    "Based on the text below, {ask_lower}\n\n{text}",
]

PROOFS = [
    "Prove the Cauchy-Schwarz inequality.",
    "Prove that every bounded monotone sequence of real numbers converges.",
    "Prove that e is irrational.",
    "Give a bijective proof that an n-element set has 2^n subsets.",
    "Prove Lagrange's theorem for finite groups.",
    "Show that a tree with n vertices has exactly n - 1 edges.",
    "Use the pigeonhole principle to prove that among any five points in a unit square, two "
    "are at distance at most sqrt(2)/2.",
    "Prove that det(AB) = det(A) det(B) for square matrices.",
    "Show that the set of computable functions is countable while the set of all functions "
    "from N to N is not.",
    "Prove that every planar graph is 6-colourable.",
    "Prove the intermediate value theorem from the completeness of the real numbers.",
    "Prove the fundamental theorem of arithmetic, both existence and uniqueness.",
    "Prove that a continuous function on a compact metric space attains its maximum.",
    "Show that the alternating group A5 is simple.",
    "Prove that a symmetric real matrix has an orthonormal basis of eigenvectors.",
    "Prove Euler's formula V - E + F = 2 for connected planar graphs.",
    "Prove that the product of two consecutive integers is always even, then generalise to k "
    "consecutive integers and k!.",
    "Show that the language of balanced parentheses is not regular.",
    "Prove that in any group of six people there are three mutual friends or three mutual "
    "strangers.",
    "Prove that the Cantor set is uncountable and has measure zero.",
    "Give a rigorous epsilon-delta proof that the limit of (x^2 - 1)/(x - 1) as x goes to 1 "
    "is 2, and explain each step.",
    "Prove the Bolzano-Weierstrass theorem.",
    "Show that 3-SAT is NP-complete, assuming SAT is.",
    "Prove that the geometric mean of positive numbers never exceeds their arithmetic mean.",
    "Prove that a connected graph has an Eulerian circuit if and only if every vertex has even "
    "degree.",
    "Prove that any two bases of a finite-dimensional vector space have the same size.",
    "Prove that the sequence (1 + 1/n)^n is increasing and bounded.",
    "Show that every ideal of the integers is principal.",
]
MATHS = [
    "Solve the recurrence T(n) = 2T(n/2) + n log n and justify the bound.",
    "Find a closed form for the Fibonacci numbers using generating functions.",
    "Compute the Fourier transform of a Gaussian and explain why it is again a Gaussian.",
    "Derive the number of ways to tile a 2 x n board with dominoes.",
    "A random chord is drawn in a circle. What is the probability that it is longer than the "
    "side of the inscribed equilateral triangle? Discuss why the answer depends on the method.",
    "Evaluate the integral of x^2 e^(-x) from 0 to infinity and justify the convergence.",
    "Find the expected number of rolls of a fair die until every face has appeared at least "
    "once, with a derivation.",
    "Solve the differential equation y'' + 4y = sin(2x) and explain the resonance.",
    "Derive the formula for the volume of an n-dimensional ball.",
    "Use Lagrange multipliers to find the rectangle of largest area inscribed in the ellipse "
    "x^2/a^2 + y^2/b^2 = 1.",
    "Derive the maximum-likelihood estimators of the mean and variance of a normal "
    "distribution and show the variance estimator is biased.",
    "Compute the Laplace transform of t sin(at) and use it to solve an initial value problem of "
    "your choice.",
    "Find all real solutions of the system x + y + z = 6, xy + yz + zx = 11, xyz = 6, and "
    "explain the method.",
    "Derive the Kalman filter update equations for a linear Gaussian system.",
]
SYSTEMS = [
    "a notification service that sends 50 million push, e-mail and SMS messages a day",
    "a distributed cache with consistent hashing and replication",
    "search-as-you-type autocomplete for an online shop with 20 million products",
    "a video streaming platform with adaptive bitrate for a million concurrent viewers",
    "a payment processing service with idempotent retries and reconciliation",
    "a group chat app with end-to-end encryption and multi-device sync",
    "a real-time leaderboard for an online game with millions of players",
    "a feature-flag service used by hundreds of microservices",
    "a centralised log aggregation system for 5,000 servers",
    "the news feed of a photo-sharing app",
    "a concert ticket booking system that never sells the same seat twice",
    "a CI/CD system that runs 100,000 builds a day",
    "a metrics and alerting system for 10 million time series",
    "an inventory system for a chain of 300 warehouses",
    "a webhook delivery system with retries, ordering and back-pressure",
    "a global configuration store with strong consistency",
    "a recommendation pipeline that updates with every user interaction",
    "a distributed file system for a research cluster",
    "a multi-region key-value store with tunable consistency",
    "a fraud-detection service that scores card payments in under 50 ms",
    "an online judge that compiles and runs untrusted code safely",
    "a hotel search engine that combines prices from hundreds of suppliers",
]
SYSTEM_FRAMES = [
    "Design {system}.",
    "Design {system}. Cover the data model, the APIs, scaling and failure handling.",
    "How would you architect {system}? Discuss the main trade-offs.",
    "Propose an architecture for {system} and explain how it degrades when a region fails.",
]
ALGORITHMS = [
    "a trie with deletion and prefix counting",
    "an interval tree that supports overlap queries",
    "A* search on a grid with diagonal moves",
    "a thread pool with work stealing",
    "a regular-expression matcher supporting *, +, ?, | and groups",
    "a minimal HTTP/1.1 server on raw sockets",
    "a B-tree with insertion and deletion",
    "the Aho-Corasick string-matching automaton",
    "a sudoku solver with constraint propagation and backtracking",
    "a rope data structure for a text editor",
    "a consistent-hashing ring with virtual nodes",
    "Kruskal's minimum spanning tree with union-find and path compression",
    "a Markdown-to-HTML converter for headings, lists, links and code blocks",
    "a skip list with probabilistic balancing",
    "a bytecode virtual machine with a mark-and-sweep garbage collector",
    "the Myers diff algorithm",
    "Huffman encoding and decoding of files",
    "a persistent (immutable) hash array mapped trie",
    "an event loop with timers and non-blocking I/O",
    "a Raft log replication module",
    "a SAT solver with unit propagation and clause learning",
    "a spreadsheet engine that recalculates dependent cells in topological order",
]
LANGUAGES = ["Python", "Rust", "Go", "Java", "C", "C++", "TypeScript", "Haskell", "Kotlin"]
CODE_FRAMES = [
    "Implement {algo} in {lang}.",
    "Write {algo} in {lang}, with tests.",
    "Implement {algo} in {lang} and analyse its time and space complexity.",
]
DEBUGGING = [
    "This binary search sometimes loops forever. Find the bug and explain it:\n\ndef search(a, "
    "x):\n    lo, hi = 0, len(a) - 1\n    while lo < hi:\n        mid = (lo + hi) // 2\n        "
    "if a[mid] < x:\n            lo = mid\n        else:\n            hi = mid\n    return lo",
    "My Go service leaks goroutines when clients disconnect. Here is the handler:\n\nfunc "
    "handle(w http.ResponseWriter, r *http.Request) {\n    ch := make(chan result)\n    go "
    "func() { ch <- slowQuery() }()\n    select {\n    case res := <-ch:\n        write(w, res)\n"
    "    case <-r.Context().Done():\n        return\n    }\n}\n\nExplain the leak and fix it.",
    "Our React component re-renders in an infinite loop after we added this effect: "
    "useEffect(() => { setItems(items.filter(i => i.active)) }, [items]). Explain why and "
    "restructure the component correctly.",
    "A SQL report that lists every author with their books takes 40 seconds; the ORM issues one "
    "query per author. Explain the N+1 problem, show the fix with a join or prefetch, and how to "
    "detect this class of bug in CI.",
    "Our Java service's heap grows until it crashes after a few days. A heap dump shows millions "
    "of listener objects held by a static event bus. Explain the likely cause and design a fix "
    "that cannot regress.",
    "This C function corrupts memory on some inputs. Find every bug:\n\nchar *join(const char "
    "*a, const char *b) {\n    char *out = malloc(strlen(a) + strlen(b));\n    strcpy(out, a);\n"
    "    strcat(out, b);\n    return out;\n}",
    "Our Kubernetes pods are OOM-killed only under peak traffic although the JVM heap is capped "
    "at 70% of the container limit. List the likely causes and how to investigate each.",
    "Two microservices sometimes process the same order twice after a network timeout. Explain "
    "why at-least-once delivery causes this and redesign the flow to be idempotent.",
]
PLANS = [
    "Plan a three-day conference for 300 attendees with two parallel tracks, a budget of "
    "80,000 EUR, step-free venues and a speaker line-up that is at least 40% women.",
    "Plan a five-day hiking trip in the Alps for six friends of mixed fitness, with huts "
    "booked in advance, one rest day, a gluten-free member and a fallback route for bad "
    "weather.",
    "Plan a move from Madrid to Stockholm for a family with two school-age children and a "
    "dog, starting a new job in eight weeks, with a budget for movers of 7,000 EUR.",
    "Plan the renovation of a 1960s kitchen and bathroom in ten weeks on a budget of 30,000 "
    "USD, while the family keeps living in the house.",
    "Draw up a hiring plan to grow an engineering team from 8 to 30 people in a year without "
    "losing velocity, including interview process, onboarding and team structure.",
    "Design a 12-week curriculum that teaches programming to adults with no experience, "
    "ending with a portfolio project, for classes of 20 meeting twice a week.",
    "Create a rota for a hospital ward with 14 nurses over four weeks: every shift needs at "
    "least three nurses including one senior, nobody works more than five nights a month, and "
    "requested holidays are respected.",
    "Make a weekly meal plan for a diabetic endurance athlete training 12 hours a week, with "
    "a food budget of 60 euros and no fish.",
    "Plan a company offsite for 45 people from four countries, two days, within 40,000 USD, "
    "with visa constraints for three attendees and an accessible venue.",
    "Plan the rollout of a new electronic health record system across five clinics without "
    "interrupting patient care, including training, data migration and a go-live checklist.",
    "Create a six-month plan to bring a mobile app from prototype to launch with two "
    "developers, one designer, app-store review risks and a fixed marketing date.",
    "Plan a semester timetable for 12 courses, 9 teachers and 6 rooms so that no teacher "
    "teaches more than three hours in a row and labs are only in the two lab rooms.",
    "Lay out a plan to reduce a factory's energy use by 25% in two years with a capital "
    "budget of 1.5 million, without stopping production lines.",
    "Plan a research project comparing three irrigation methods across farms in two climates "
    "over three growing seasons, including sampling design and budget.",
]
ANALYSES = [
    "Analyse the impact of quantitative easing on wealth inequality.",
    "Compare the legal doctrines of fair use in the US and fair dealing in the UK, with cases.",
    "A patient on warfarin starts amiodarone. Explain the interaction, its time course and how "
    "to manage the dose.",
    "Evaluate the structural design considerations for a 60-storey mass-timber building.",
    "Explain the causes of the fall of the Western Roman Empire, weighing the main "
    "historiographical schools.",
    "Explain the Shockley-Queisser limit for solar cells and how tandem cells exceed it.",
    "What are the failure modes of lithium-ion batteries, and how do battery management "
    "systems mitigate them?",
    "Should a delivery company lease or buy its van fleet? Build the analysis, including "
    "residual values, maintenance, tax treatment and the risk of electric-vehicle mandates.",
    "Explain how mRNA vaccines work and why their cold chain is harder than for older vaccines.",
    "Assess the geopolitical consequences of melting Arctic sea ice for shipping and resources.",
    "Compare the consistency models of Spanner, DynamoDB and Cassandra, and when each fits.",
    "Analyse why the Tacoma Narrows Bridge collapsed and what engineering practice changed "
    "afterwards.",
    "Explain the mechanisms of antibiotic resistance and evaluate strategies to slow it.",
    "Evaluate the arguments for and against central bank digital currencies.",
    "A 7-year-old has recurrent fevers every four weeks with mouth ulcers and swollen neck "
    "glands. Discuss the differential diagnosis and the work-up.",
    "Analyse the trade-offs of monetary unions, using the euro crisis as a case study.",
    "Explain the bias-variance trade-off and how it changes in over-parameterised neural "
    "networks (double descent).",
    "Compare the philosophical positions of Kant and Mill on lying, and apply them to a "
    "modern whistle-blowing case.",
    "Critically evaluate the replication crisis in psychology: causes, evidence and reforms.",
    "Explain how a modern CPU executes instructions out of order and how Spectre exploits it.",
    "Analyse the unit economics of a meal-kit subscription business and why many have "
    "struggled to become profitable.",
    "Explain the physics of how a transistor works, from band structure to switching.",
    "Assess the risks of deploying large language models in clinical decision support.",
    "Explain what causes inflation to become entrenched and which policy tools can break it.",
    "Compare the immune responses to bacterial and viral infections at the cellular level.",
    "Evaluate the environmental trade-offs of nuclear power compared with wind and solar plus "
    "storage.",
    "Explain how public-key cryptography works and why quantum computers threaten RSA.",
    "A contract says the supplier is liable for 'all direct and indirect losses' but caps "
    "liability at the annual fee. Analyse how a court might read this and how to redraft it.",
    "Our SaaS company's gross margin fell from 78% to 64% in a year while revenue grew 40%. "
    "Cloud costs tripled, support headcount doubled and we added a free tier. Analyse what "
    "drove the drop and what to change first.",
    "A bank's credit model approves far fewer loans for one postcode area. Analyse whether this "
    "is unlawful discrimination, how to test for proxy bias, and what to do about it.",
    "Given month-on-month sales data with strong seasonality, a product launch and a price "
    "change in the same quarter, explain how you would estimate the effect of the price change.",
    "Our nightly ETL job processes 400 GB in Spark and takes 9 hours; the logs show heavy "
    "shuffle spill and one task running ten times longer than the rest. Diagnose the causes and "
    "propose concrete fixes.",
]


def _simple_text_tasks(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` (kind, prompt) pairs: a task frame joined to a passage, no pair drawn twice."""
    kinds = {
        "Summ": "summarise",
        "Give me a short": "summarise",
        "TL;DR": "summarise",
        "Transl": "translate",
        "Please translate": "translate",
        "Rewrite": "rewrite",
        "Make this": "rewrite",
        "Fix": "rewrite",
        "Turn": "format",
        "Give this": "rewrite",
        "Is the tone": "classify",
        "Shorten": "rewrite",
        "Extract": "extract",
        "List every": "extract",
        "Read this": "extract",
        "{text}": "extract",
        "Based on": "extract",
    }
    pairs = [(p, f) for p in range(len(PASSAGES)) for f in range(len(TEXT_FRAMES))]
    rng.shuffle(pairs)
    out = []
    for p, f in pairs[:n]:
        text, asks = PASSAGES[p]
        ask = rng.choice(asks)
        frame = TEXT_FRAMES[f]
        kind = next(k for prefix, k in kinds.items() if frame.startswith(prefix))
        prompt = frame.format(text=text, ask=ask, ask_lower=ask[0].lower() + ask[1:])
        out.append((kind, prompt))
    return out


def _arithmetic(rng: random.Random, n: int) -> list[str]:
    """``n`` one-step arithmetic questions with random operands."""
    makers = [
        lambda: f"What is {rng.randint(2, 99)} + {rng.randint(2, 99)}?",
        lambda: f"What's {rng.randint(50, 500)} minus {rng.randint(1, 49)}?",
        lambda: f"Calculate {rng.randint(2, 12)} x {rng.randint(2, 12)}.",
        lambda: f"What is {rng.choice([10, 25, 50, 75])}% of {rng.choice([40, 80, 200, 360])}?",
        lambda: f"Divide {rng.choice([24, 36, 48, 60, 72, 96])} by {rng.choice([2, 3, 4, 6])}.",
        lambda: f"How many seconds are in {rng.randint(2, 9)} minutes?",
        lambda: (
            f"If a notebook costs {rng.randint(2, 6)} dollars, how much do "
            f"{rng.randint(2, 9)} notebooks cost?"
        ),
        lambda: f"What is half of {rng.choice([18, 46, 90, 130, 250])}?",
        lambda: f"Add {rng.randint(100, 900)} and {rng.randint(100, 900)}.",
        lambda: f"How many centimetres are in {rng.randint(2, 9)} metres?",
        # Typed tersely, as people do: "2+2" must read as simple as "2 + 2".
        lambda: f"What is {rng.randint(1, 9)}+{rng.randint(1, 9)}?",
        lambda: f"{rng.randint(2, 20)}*{rng.randint(2, 9)}=?",
        lambda: f"what's {rng.choice([12, 20, 30, 45])}/{rng.choice([3, 5])}",
        lambda: f"{rng.randint(10, 99)} - {rng.randint(1, 9)}",
        lambda: f"What is {rng.randint(2, 9)} squared?",
        lambda: f"Is {rng.randint(2, 50)} bigger than {rng.randint(2, 50)}?",
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def _word_problems(rng: random.Random, n: int) -> list[str]:
    """``n`` multi-step word problems with random numbers: several steps of reasoning each."""
    makers = [
        lambda: (
            f"A bakery sells muffins for {rng.randint(2, 4)} dollars and cookies for 1.50. On "
            f"Monday it sold {rng.randint(20, 60)} muffins and twice as many cookies; on Tuesday "
            "sales of both fell by a third. How much did it take in over the two days?"
        ),
        lambda: (
            f"A tank holds {rng.choice([600, 800, 1200])} litres. One pipe fills it in "
            f"{rng.randint(3, 6)} hours and a drain empties it in {rng.randint(8, 12)} hours. If "
            "both are open and the tank starts a quarter full, how long until it is full?"
        ),
        lambda: (
            f"Maria is {rng.randint(3, 5)} times as old as her son. In {rng.randint(10, 15)} "
            "years she will be twice as old as him. How old are they now?"
        ),
        lambda: (
            f"A shop raises a price by {rng.choice([10, 20, 25])}% and then offers "
            f"{rng.choice([10, 20, 30])}% off the new price. A customer pays "
            f"{rng.randint(40, 90)} dollars. What was the original price, and is the final price "
            "higher or lower than it?"
        ),
        lambda: (
            f"A cyclist rides {rng.randint(20, 40)} km at {rng.randint(15, 20)} km/h, rests for "
            f"{rng.randint(20, 45)} minutes, then rides back at {rng.randint(22, 28)} km/h. What "
            "is her average speed for the whole trip, including the rest?"
        ),
        lambda: (
            f"Three workers paint a fence in {rng.randint(6, 9)} hours. After "
            f"{rng.randint(2, 3)} hours one of them leaves. How long does the whole job take?"
        ),
        lambda: (
            f"A school has {rng.randint(300, 600)} pupils. {rng.randint(40, 60)}% are girls, and "
            f"a quarter of the girls and a fifth of the boys play in the orchestra. How many "
            "pupils play in the orchestra?"
        ),
        lambda: (
            f"Tom saves {rng.randint(15, 30)} dollars a week. His sister starts with "
            f"{rng.randint(100, 200)} dollars and spends {rng.randint(5, 10)} a week. After how "
            "many weeks will Tom have more money than her if he starts with nothing?"
        ),
        lambda: (
            f"A recipe for {rng.randint(4, 6)} people needs 300 g of flour, 2 eggs and 250 ml of "
            f"milk. I am cooking for {rng.randint(9, 14)} people and have only 5 eggs. How much of "
            "each ingredient do I need, and how many more eggs must I buy?"
        ),
        lambda: (
            f"A phone plan costs {rng.randint(10, 20)} dollars a month plus 0.05 per minute over "
            f"{rng.choice([300, 500])} minutes; another costs {rng.randint(25, 35)} with unlimited "
            "minutes. From how many minutes a month is the second plan cheaper?"
        ),
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def rows(seed: int = SEED) -> list[dict[str, object]]:
    """Every training row (a fixed order for a seed): ``prompt``, ``weak``, ``strong``, ``source``,
    ``label`` and ``kind``."""
    rng = random.Random(seed)
    simple: list[tuple[str, str]] = [
        *(("greeting", p) for p in GREETINGS),
        *(("thanks", p) for p in THANKS),
        *(("yes_no_fact", p) for p in FACTS),
        *(("word", p) for p in WORDS),
        *(("short_write", p) for p in SHORT_WRITING),
        *(("classify", p) for p in CLASSIFY),
        *(("format", p) for p in FORMAT_TASKS),
        *(("rewrite", p) for p in SMALL_TEXT_TASKS),
        *(("arithmetic", p) for p in _arithmetic(rng, 40)),
        *(("quiz", p) for p in QUIZ),
        *(("lookup", p) for p in LOOKUPS),
        *_simple_text_tasks(rng, 90),
    ]
    systems = [
        ("system_design", SYSTEM_FRAMES[(i + j) % len(SYSTEM_FRAMES)].format(system=system))
        for i, system in enumerate(SYSTEMS)
        for j in range(2)
    ]
    codes = []
    for i, algo in enumerate(ALGORITHMS):
        for j in range(2):
            lang = LANGUAGES[(2 * i + j) % len(LANGUAGES)]
            frame = CODE_FRAMES[(i + j) % len(CODE_FRAMES)]
            codes.append(("code", frame.format(algo=algo, lang=lang)))
    demanding: list[tuple[str, str]] = [
        *(("proof", p) for p in PROOFS),
        *(("maths", p) for p in MATHS),
        *systems,
        *codes,
        *(("code", p) for p in DEBUGGING),
        *(("planning", p) for p in PLANS),
        *(("analysis", p) for p in ANALYSES),
        *(("expert_quiz", p) for p in EXPERT_QUIZ),
        *(("logic_puzzle", p) for p in LOGIC_PUZZLES),
        *(("word_problem", p) for p in _word_problems(rng, 30)),
    ]
    out: list[dict[str, object]] = []
    for label, items, weak in (("simple", simple, 1.0), ("demanding", demanding, 0.0)):
        for kind, prompt in items:
            out.append(
                {
                    "prompt": prompt,
                    "weak": weak,
                    "strong": 1.0,
                    "source": SOURCE,
                    "label": label,
                    "kind": kind,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the rows as JSONL to the path given (``self_written.jsonl`` beside this file)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).with_name("self_written.jsonl")
    lines = [json.dumps(row, ensure_ascii=False) for row in rows()]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} rows to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
