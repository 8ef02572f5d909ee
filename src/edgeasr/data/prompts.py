"""In-domain prompts for voice search and voice commands, and the sentence split.

:func:`generate_prompts` fills hand-written templates for eleven domains (weather, timers and
alarms, calls and messages, music and media, navigation, directions and distances, numbers and
digit strings, times and dates, shopping, smart home, general questions) from word lists, with a
seeded :class:`random.Random`. Numbers, times, prices and codes are first written the way people
type them ("set a timer for 5 minutes", "call 555-0134") and then passed through
:func:`edgeasr.text.normalize_text`, so the prompts exercise the labelling convention; the
returned sentences are labels (normalized, distinct). :func:`load_text_list` reads a user's own
sentences instead, reporting every line it cannot use. :func:`split_sentences` assigns each
distinct sentence to exactly one of train/dev/test, so no test sentence occurs in training.

The same seed gives the same sentences in the same order on every machine (only ``random.Random``
is used, never hash order).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeasr.text import DEFAULT_OPTIONS, NormalizeOptions, TextNormalizationError, normalize_text

__all__ = [
    "DOMAINS",
    "PromptOptions",
    "SentenceSplit",
    "TextListResult",
    "generate_prompts",
    "load_text_list",
    "split_sentences",
    "vocabulary",
]


def _w(text: str) -> list[str]:
    """Split a comma-separated word list."""
    return [item.strip() for item in text.split(",") if item.strip()]


CITIES = _w(
    "new york, los angeles, chicago, houston, phoenix, philadelphia, san antonio, san diego, dallas, "
    "austin, seattle, denver, boston, detroit, nashville, portland, memphis, baltimore, milwaukee, "
    "albuquerque, tucson, fresno, sacramento, atlanta, miami, oakland, minneapolis, tulsa, cleveland, "
    "wichita, new orleans, honolulu, anchorage, pittsburgh, cincinnati, orlando, tampa, raleigh, "
    "omaha, salt lake city, las vegas, kansas city, saint louis, buffalo, richmond, boise, spokane, "
    "des moines, madison, savannah, charleston, burlington, london, paris, berlin, madrid, rome, "
    "lisbon, dublin, edinburgh, glasgow, manchester, liverpool, amsterdam, brussels, vienna, prague, "
    "warsaw, budapest, athens, stockholm, oslo, copenhagen, helsinki, zurich, geneva, munich, "
    "barcelona, milan, naples, venice, florence, toronto, montreal, vancouver, calgary, ottawa, "
    "winnipeg, halifax, sydney, melbourne, brisbane, perth, adelaide, auckland, wellington, tokyo, "
    "osaka, kyoto, seoul, beijing, shanghai, singapore, bangkok, mumbai, delhi, dubai, cairo, "
    "nairobi, lagos, johannesburg, cape town, mexico city, lima, bogota, santiago, buenos aires, "
    "rio de janeiro, havana, reykjavik, istanbul, jerusalem, manila, jakarta, hanoi"
)
NAMES = _w(
    "james, mary, robert, patricia, john, jennifer, michael, linda, david, elizabeth, william, "
    "barbara, richard, susan, joseph, jessica, thomas, sarah, charles, karen, christopher, lisa, "
    "daniel, nancy, matthew, betty, anthony, margaret, mark, sandra, donald, ashley, steven, "
    "kimberly, paul, emily, andrew, donna, joshua, michelle, kenneth, carol, kevin, amanda, brian, "
    "dorothy, george, melissa, timothy, deborah, ronald, stephanie, edward, rebecca, jason, sharon, "
    "jeffrey, laura, ryan, cynthia, jacob, kathleen, gary, amy, nicholas, angela, eric, shirley, "
    "jonathan, anna, stephen, brenda, larry, pamela, justin, emma, scott, nicole, brandon, helen, "
    "benjamin, samantha, samuel, katherine, gregory, christine, alexander, debra, frank, rachel, "
    "patrick, carolyn, raymond, janet, jack, catherine, dennis, maria, jerry, heather, tyler, diane, "
    "aaron, ruth, jose, julie, adam, olivia, nathan, joyce, henry, virginia, douglas, victoria, "
    "zachary, kelly, peter, lauren, kyle, christina, noah, joan, ethan, evelyn, jeremy, judith, "
    "walter, megan, christian, andrea, keith, cheryl, roger, hannah, terry, jacqueline, austin, "
    "martha, sean, gloria, gerald, teresa, carl, ann, harold, sara, dylan, madison, arthur, frances, "
    "lawrence, kathryn, jordan, janice, jesse, jean, bryan, abigail, billy, alice, bruce, judy, "
    "gabriel, sophia, logan, grace, alan, denise, juan, amber, wayne, doris, roy, marilyn, ralph, "
    "danielle, randy, beverly, eugene, isabella, vincent, theresa, russell, diana, louis, natalie, "
    "mom, dad, grandma, grandpa"
)
RELATIONS = _w("my wife, my husband, my sister, my brother, my boss, the office, the doctor, my son, my daughter")
ARTISTS = _w(
    "the beatles, taylor swift, miles davis, john coltrane, ella fitzgerald, louis armstrong, "
    "bob dylan, johnny cash, dolly parton, elvis presley, aretha franklin, stevie wonder, "
    "michael jackson, madonna, prince, queen, the rolling stones, pink floyd, led zeppelin, "
    "fleetwood mac, the eagles, nirvana, radiohead, coldplay, adele, beyonce, rihanna, drake, "
    "kendrick lamar, eminem, ed sheeran, billie eilish, bruno mars, lady gaga, shakira, "
    "bach, mozart, beethoven, chopin, vivaldi, tchaikovsky, debussy, the cure, the clash, "
    "bob marley, frank sinatra, nina simone, norah jones, duke ellington, daft punk, abba, u two"
)
GENRES = _w(
    "jazz, blues, rock, classical music, country music, hip hop, reggae, folk music, pop music, "
    "soul music, funk, disco, metal, punk, electronic music, lo fi beats, piano music, "
    "relaxing music, workout music, party music, dinner music, christmas music, lullabies, "
    "rain sounds, ocean sounds, white noise, podcasts, the news, audiobooks, gospel, opera"
)
SONG_WORDS = _w(
    "love, night, summer, river, heart, dream, fire, rain, blue, golden, highway, home, moon, sun, "
    "ocean, wild, forever, yesterday, tomorrow, dancing, stars, city, lights, shadow, angel, "
    "morning, midnight, storm, paradise, thunder, diamond, silver, crazy, sweet, lonely, little"
)
MEDIA_ACTIONS = _w(
    "pause, resume, stop, skip this song, next track, previous track, play it again, shuffle my "
    "playlist, turn it up, turn it down, mute, unmute, repeat this song, like this song, "
    "add this song to my favorites, what song is this, who sings this, rewind thirty seconds, "
    "fast forward one minute, play the next episode"
)
ITEMS = _w(
    "milk, eggs, bread, butter, cheese, yogurt, apples, bananas, oranges, grapes, strawberries, "
    "blueberries, lemons, limes, avocados, tomatoes, potatoes, onions, garlic, carrots, celery, "
    "lettuce, spinach, broccoli, cucumbers, peppers, mushrooms, corn, rice, pasta, flour, sugar, "
    "salt, pepper, olive oil, vinegar, ketchup, mustard, mayonnaise, honey, peanut butter, jam, "
    "cereal, oatmeal, coffee, tea, orange juice, apple juice, sparkling water, soda, beer, wine, "
    "chicken, beef, pork, bacon, sausages, salmon, tuna, shrimp, tofu, beans, lentils, chickpeas, "
    "almonds, walnuts, crackers, chips, cookies, chocolate, ice cream, frozen pizza, soup, "
    "tortillas, bagels, muffins, pancake mix, maple syrup, cinnamon, paprika, basil, oregano, "
    "paper towels, toilet paper, tissues, dish soap, laundry detergent, bleach, sponges, "
    "trash bags, aluminum foil, plastic wrap, batteries, light bulbs, toothpaste, toothbrushes, "
    "shampoo, conditioner, soap, deodorant, razors, sunscreen, vitamins, aspirin, bandages, "
    "cat food, dog food, diapers, baby wipes, candles, matches, napkins, a phone charger, "
    "headphones, a birthday card, wrapping paper, printer paper, pens, pencils, notebooks, "
    "a water bottle, a lunch box, flowers, a rain jacket, socks, running shoes, an umbrella"
)
STORES = _w(
    "the grocery store, the pharmacy, the hardware store, the supermarket, the farmers market, "
    "the bakery, the pet store, the bookstore, the mall, the corner shop"
)
PLACES = _w(
    "the nearest gas station, the airport, the train station, the bus station, the hospital, "
    "the nearest pharmacy, a coffee shop, a pizza place, a sushi restaurant, a thai restaurant, "
    "an italian restaurant, a mexican restaurant, a chinese restaurant, an indian restaurant, "
    "a vegetarian restaurant, the library, the post office, the bank, an atm, the museum, the zoo, "
    "the beach, the park, the stadium, the university, the city hall, the police station, "
    "a parking garage, a car wash, an electric vehicle charger, a hotel, the gym, a swimming pool, "
    "a playground, the movie theater, a bar, a bakery, a dentist, a vet, the ferry terminal, "
    "the harbor, the botanical garden, the aquarium, the art gallery, the cathedral, the castle, "
    "the market square, the shopping center, the nearest hardware store, a laundromat, work, home, "
    "my office, my parents' house, my friend's place, school"
)
STREET_NAMES = _w(
    "main, oak, pine, maple, cedar, elm, washington, lake, hill, park, church, market, highland, "
    "river, sunset, spring, willow, lincoln, jefferson, madison, franklin, chestnut, walnut, mill, "
    "center, union, forest, meadow, bridge, harbor, valley, ridge, orchard, garden, prospect"
)
STREET_KINDS = _w("street, avenue, road, boulevard, lane, drive, way, court, place, terrace")
ROOMS = _w(
    "living room, kitchen, bedroom, bathroom, dining room, hallway, office, garage, basement, attic, "
    "kids' room, guest room, porch, backyard, laundry room, nursery, den, patio"
)
DEVICES = _w(
    "lights, lamp, ceiling fan, heater, air conditioner, thermostat, tv, speaker, radio, "
    "dishwasher, washing machine, dryer, coffee maker, kettle, oven, microwave, robot vacuum, "
    "humidifier, air purifier, sprinkler, garage door, front door lock, porch light, "
    "security camera, doorbell, blinds, curtains, fireplace, water heater, christmas tree lights"
)
COLORS = _w("red, green, blue, yellow, orange, purple, pink, white, warm white, cool white, teal, gold")
ANIMALS = _w(
    "elephant, giraffe, lion, tiger, cheetah, zebra, hippo, rhino, gorilla, chimpanzee, kangaroo, "
    "koala, panda, polar bear, penguin, dolphin, whale, shark, octopus, jellyfish, turtle, "
    "crocodile, snake, frog, owl, eagle, parrot, hummingbird, flamingo, peacock, bat, wolf, fox, "
    "rabbit, squirrel, hedgehog, beaver, otter, horse, cow, sheep, goat, pig, chicken, duck, bee, "
    "butterfly, ant, spider, camel, llama, moose, deer, raccoon, skunk, hamster, goldfish"
)
COUNTRIES = _w(
    "france, germany, spain, italy, portugal, ireland, scotland, england, norway, sweden, finland, "
    "denmark, iceland, poland, greece, turkey, egypt, morocco, kenya, nigeria, ghana, ethiopia, "
    "south africa, india, china, japan, korea, vietnam, thailand, indonesia, australia, "
    "new zealand, canada, mexico, brazil, argentina, chile, peru, colombia, cuba, jamaica, "
    "russia, ukraine, switzerland, austria, belgium, the netherlands, hungary, nepal, mongolia"
)
THINGS = _w(
    "the moon, the sun, mars, jupiter, saturn, a black hole, a volcano, an earthquake, a rainbow, "
    "lightning, a tornado, a hurricane, the ocean, a glacier, the desert, the rainforest, "
    "the pyramids, the eiffel tower, the great wall, the internet, electricity, gravity, "
    "photosynthesis, a vaccine, the heart, the brain, the immune system, dna, a computer, "
    "a telescope, a microscope, a battery, a solar panel, a wind turbine, an airplane, a rocket, "
    "a submarine, a bicycle, a piano, a violin, chess, basketball, soccer, baseball, tennis, "
    "golf, the olympics, yoga, meditation, sourdough bread, pancakes, lasagna, guacamole, "
    "a cheesecake, espresso, green tea, democracy, the constitution, the renaissance, "
    "the roman empire, dinosaurs, the ice age, climate change, recycling, compost"
)
QUESTION_FRAMES = _w(
    "what is, who invented, how does, why is, when was, where is, how big is, how old is, "
    "tell me about, explain, what's the history of, how do you pronounce, how do you spell, "
    "what does a word mean, show me pictures of, search for, look up, find videos about, "
    "what are the facts about, give me a fun fact about"
)
RECIPES = _w(
    "chicken curry, banana bread, tomato soup, chocolate chip cookies, beef stew, fried rice, "
    "apple pie, pad thai, mac and cheese, vegetable lasagna, pumpkin pie, french toast, "
    "chili, risotto, fish tacos, caesar salad, carrot cake, lemonade, hummus, meatballs"
)
WEATHER_THINGS = _w("rain, snow, sun, wind, fog, a storm, thunder, hail, frost, a heat wave, sleet, showers")
DAYS = _w("monday, tuesday, wednesday, thursday, friday, saturday, sunday")
MONTHS = _w("january, february, march, april, may, june, july, august, september, october, november, december")
WHEN = _w(
    "today, tomorrow, tonight, this morning, this afternoon, this evening, this weekend, next week, "
    "tomorrow morning, tomorrow night, later today, right now, over the next hour, on the weekend"
)
EVENTS = _w(
    "dentist appointment, team meeting, doctor's appointment, dinner with friends, yoga class, "
    "piano lesson, soccer practice, parent teacher conference, haircut, flight, job interview, "
    "book club, birthday party, lunch with my manager, car service, vet appointment, date night"
)
REMINDERS = _w(
    "take out the trash, water the plants, call the bank, feed the cat, walk the dog, pay the rent, "
    "take my medicine, pick up the kids, buy a gift, renew my passport, charge my phone, "
    "check the oven, lock the back door, stretch, drink some water, send the report, book a table"
)
MESSAGES = _w(
    "i'm running late, i'll be there in ten minutes, see you soon, call me when you can, "
    "happy birthday, don't forget the milk, i'm on my way, dinner is ready, good night, "
    "thanks for everything, can we talk later, the meeting moved to the afternoon, "
    "let's meet at the coffee shop, i love you, i'm stuck in traffic, are you home yet"
)
UNITS_OF_TIME = _w("second, minute, hour")
CONVERSIONS = _w(
    "miles in a kilometer, feet in a mile, ounces in a pound, grams in an ounce, cups in a liter, "
    "teaspoons in a tablespoon, days in a year, seconds in a day, inches in a foot, pints in a gallon"
)
MATH_OPS = _w("plus, minus, times, divided by")


def _num(rng: random.Random, lo: int, hi: int) -> str:
    return str(rng.randint(lo, hi))


def _time(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    minute = rng.choice([0, 0, 5, 10, 15, 20, 25, 30, 30, 40, 45, 50, 55, rng.randint(0, 59)])
    suffix = rng.choice(["", " am", " pm", " a.m.", " p.m.", " in the morning", " in the evening"])
    return f"{hour}:{minute:02d}{suffix}"


def _duration(rng: random.Random) -> str:
    unit = rng.choice(UNITS_OF_TIME)
    n = rng.choice([1, 2, 3, 5, 10, 15, 20, 25, 30, 45, 90, rng.randint(1, 59)])
    if unit == "hour":
        n = rng.randint(1, 12)
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _date(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:
        return f"{rng.choice(MONTHS)} {_ordinal(rng.randint(1, 31))}"
    if form == 1:
        return f"the {_ordinal(rng.randint(1, 31))} of {rng.choice(MONTHS)}"
    if form == 2:
        return f"next {rng.choice(DAYS)}"
    return f"{rng.choice(MONTHS)} {rng.randint(1, 31)} {rng.randint(1950, 2035)}"


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _ordinal(n: int) -> str:
    return f"{n}{_ordinal_suffix(n)}"


def _phone(rng: random.Random) -> str:
    form = rng.randrange(3)
    if form == 0:
        return f"{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if form == 1:
        return f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    return "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([5, 6, 7, 10])))


def _street(rng: random.Random) -> str:
    return f"{rng.randint(1, 2500)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_KINDS)}"


def _price(rng: random.Random) -> str:
    return f"${rng.randint(1, 500)}" + (f".{rng.randint(1, 99):02d}" if rng.random() < 0.4 else "")


def _distance(rng: random.Random) -> str:
    n = rng.choice([str(rng.randint(1, 500)), f"{rng.randint(0, 20)}.{rng.randint(1, 9)}"])
    return f"{n} {rng.choice(['miles', 'km', 'kilometers', 'meters', 'feet', 'blocks', 'mi'])}"


def _temperature(rng: random.Random) -> str:
    return f"{rng.randint(-10, 105)} degrees" if rng.random() < 0.5 else f"{rng.randint(-5, 40)}°C"


def _big_number(rng: random.Random) -> str:
    return rng.choice(
        [
            str(rng.randint(0, 999)),
            f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}",
            str(rng.randint(1000, 9999)),
            f"{rng.randint(1, 99)}.{rng.randint(0, 99)}",
        ]
    )


def _percent(rng: random.Random) -> str:
    return f"{rng.randint(1, 100)}%"


def _pin(rng: random.Random) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([4, 5, 5, 6, 8])))


_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "city": lambda r: r.choice(CITIES),
    "name": lambda r: r.choice(NAMES + RELATIONS),
    "artist": lambda r: r.choice(ARTISTS),
    "genre": lambda r: r.choice(GENRES),
    "song": lambda r: " ".join(r.sample(SONG_WORDS, r.choice([1, 2, 2, 3]))),
    "media_action": lambda r: r.choice(MEDIA_ACTIONS),
    "item": lambda r: r.choice(ITEMS),
    "store": lambda r: r.choice(STORES),
    "place": lambda r: r.choice(PLACES),
    "room": lambda r: r.choice(ROOMS),
    "device": lambda r: r.choice(DEVICES),
    "color": lambda r: r.choice(COLORS),
    "animal": lambda r: r.choice(ANIMALS),
    "country": lambda r: r.choice(COUNTRIES),
    "thing": lambda r: r.choice(THINGS + ANIMALS + COUNTRIES),
    "frame": lambda r: r.choice(QUESTION_FRAMES),
    "recipe": lambda r: r.choice(RECIPES),
    "weather_thing": lambda r: r.choice(WEATHER_THINGS),
    "day": lambda r: r.choice(DAYS),
    "when": lambda r: r.choice(WHEN + DAYS + [f"on {d}" for d in DAYS]),
    "event": lambda r: r.choice(EVENTS),
    "reminder": lambda r: r.choice(REMINDERS),
    "message": lambda r: r.choice(MESSAGES),
    "conversion": lambda r: r.choice(CONVERSIONS),
    "op": lambda r: r.choice(MATH_OPS),
    "time": _time,
    "duration": _duration,
    "date": _date,
    "phone": _phone,
    "street": _street,
    "price": _price,
    "distance": _distance,
    "temperature": _temperature,
    "number": _big_number,
    "small": lambda r: _num(r, 1, 100),
    "percent": _percent,
    "pin": _pin,
    "ordinal": lambda r: _ordinal(r.randint(1, 40)),
    "level": lambda r: _num(r, 1, 10),
    "year": lambda r: _num(r, 1900, 2030),
}

DOMAINS: dict[str, list[str]] = {
    "weather": [
        "what's the weather {when}",
        "what's the weather in {city}",
        "what's the weather in {city} {when}",
        "will it {weather_thing} {when}",
        "is there going to be {weather_thing} in {city} {when}",
        "how hot will it get {when}",
        "what's the temperature in {city}",
        "do i need an umbrella {when}",
        "will it be colder than {temperature} {when}",
        "what's the forecast for {day} in {city}",
        "is it windy in {city} right now",
        "what's the humidity {when}",
        "when does the sun set in {city}",
        "what time is sunrise {when}",
        "what's the chance of {weather_thing} {when}",
        "will it be above {temperature} in {city} {when}",
        "what's the air quality in {city}",
        "what's the uv index {when}",
        "should i wear a jacket {when}",
    ],
    "timers_alarms": [
        "set a timer for {duration}",
        "set an alarm for {time}",
        "wake me up at {time}",
        "set a {duration} timer",
        "set a timer for {duration} called {recipe}",
        "cancel my {time} alarm",
        "how much time is left on my timer",
        "snooze for {duration}",
        "remind me to {reminder} at {time}",
        "remind me to {reminder} {when}",
        "remind me in {duration} to {reminder}",
        "set a reminder for my {event} on {date}",
        "add {duration} to the timer",
        "stop the alarm",
        "set an alarm for {time} every {day}",
        "delete all my alarms",
        "pause the timer",
    ],
    "calls_messages": [
        "call {name}",
        "call {name} on speaker",
        "call {name} on their mobile",
        "dial {phone}",
        "call {phone}",
        "text {name} {message}",
        "send a message to {name} saying {message}",
        "read my messages from {name}",
        "reply to {name} {message}",
        "video call {name}",
        "send {name} my location",
        "did {name} call me",
        "what's {name}'s phone number",
        "save {phone} as {name}'s number",
        "email {name} about the {event}",
        "redial the last number",
        "tell {name} {message}",
        "call the number {phone}",
    ],
    "music_media": [
        "play {artist}",
        "play some {genre}",
        "play {song} by {artist}",
        "play the song {song}",
        "play {genre} in the {room}",
        "{media_action}",
        "set the volume to {level}",
        "play my {genre} playlist",
        "play the album {song} by {artist}",
        "play songs like {artist}",
        "play {genre} from {year}",
        "play the latest episode of {song}",
        "turn the volume up to {percent}",
        "who is {artist}",
        "play {artist} on the {device}",
        "add {song} to my playlist",
        "play the top songs of {year}",
    ],
    "navigation": [
        "navigate to {place}",
        "take me to {place}",
        "directions to {street}",
        "navigate to {street} in {city}",
        "how do i get to {place}",
        "find {place} near me",
        "find {place} in {city}",
        "take me home",
        "avoid highways",
        "avoid tolls on the way to {city}",
        "how's the traffic on the way to {place}",
        "find parking near {place}",
        "start navigation to {street}",
        "what's my eta",
        "add a stop at {place}",
        "show me the route to {city}",
        "where is the closest {item} for sale",
    ],
    "directions_distances": [
        "how far is {city} from {city}",
        "how far is it to {place}",
        "how long does it take to drive to {city}",
        "how many miles to {city}",
        "how long is the walk to {place}",
        "is {place} within {distance}",
        "find {place} within {distance}",
        "what's the distance between {city} and {city}",
        "turn left in {distance}",
        "in {distance} turn right onto {street}",
        "how far away is {place}",
        "how long to {place} by bike",
        "how long to {city} by train",
        "is {city} north of {city}",
    ],
    "numbers_digits": [
        "what is {number} {op} {number}",
        "what's {percent} of {number}",
        "convert {distance} to miles",
        "how many {conversion}",
        "what's the square root of {number}",
        "my pin is {pin}",
        "my account number is {phone}",
        "the code is {pin}",
        "my zip code is {pin}",
        "enter {pin}",
        "what's {number} squared",
        "round {number} to the nearest ten",
        "my flight number is {small}",
        "the confirmation code is {pin}",
        "my order number is {phone}",
        "add {price} to my budget",
        "split {price} {level} ways",
        "what's a {percent} tip on {price}",
    ],
    "times_dates": [
        "what time is it",
        "what time is it in {city}",
        "what's the date {when}",
        "what day is {date}",
        "how many days until {date}",
        "what day of the week was {date}",
        "when is my {event}",
        "schedule a {event} on {date} at {time}",
        "move my {event} to {time}",
        "what's on my calendar {when}",
        "am i free on {date}",
        "how long until {time}",
        "what's the time difference between {city} and {city}",
        "add {event} to my calendar for {date}",
        "is {date} a holiday",
        "when is the next full moon",
        "cancel my {event} {when}",
    ],
    "shopping": [
        "add {item} to my shopping list",
        "add {item} and {item} to my list",
        "buy {item}",
        "order more {item}",
        "remove {item} from my list",
        "what's on my shopping list",
        "how much does {item} cost",
        "is {store} open {when}",
        "find {item} under {price}",
        "reorder {item}",
        "track my order",
        "where is my package",
        "when does {store} close",
        "compare prices for {item}",
        "add {small} {item} to my cart",
        "i need {item} from {store}",
        "what's the cheapest {item} near me",
    ],
    "smart_home": [
        "turn on the {device}",
        "turn off the {device}",
        "turn on the {room} {device}",
        "turn off the {device} in the {room}",
        "dim the {room} lights to {percent}",
        "set the {room} lights to {color}",
        "set the thermostat to {temperature}",
        "set the {room} to {temperature}",
        "lock the front door",
        "is the garage door closed",
        "start the {device}",
        "turn the {device} down to {level}",
        "open the {device} in the {room}",
        "close the {device}",
        "show me the {device} camera",
        "set the {device} to {level}",
        "is the {device} on",
        "turn everything off in the {room}",
        "good night, turn off all the lights",
    ],
    "general_questions": [
        "{frame} {thing}",
        "{frame} {thing}",
        "how tall is {thing}",
        "how big is a {animal}",
        "what do {animal}s eat",
        "how long do {animal}s live",
        "what's the capital of {country}",
        "what language do they speak in {country}",
        "how many people live in {city}",
        "what's the population of {country}",
        "how do i make {recipe}",
        "give me a recipe for {recipe}",
        "how many calories are in {item}",
        "what year did {artist} release their first album",
        "who won the game last night",
        "tell me a joke",
        "what's the news {when}",
        "what's the exchange rate between {country} and {country}",
        "when was {thing} discovered",
        "how far is {thing} from earth",
        "what happened in {country} in {year}",
    ],
}
"""Templates per domain; ``{slot}`` placeholders are filled from the word lists above."""


@dataclass(frozen=True)
class PromptOptions:
    """How many prompts to make and from which domains."""

    num_sentences: int = 5000  # distinct normalized sentences to return
    seed: int = 0  # seed of random.Random; the same seed gives the same list
    domains: tuple[str, ...] = tuple(DOMAINS)  # which domains to draw from (all eleven by default)
    max_words: int = 20  # sentences longer than this (after normalization) are skipped
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)  # the labelling convention


def _fill(template: str, rng: random.Random) -> str:
    out = []
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        slot, _, rest = tail.partition("}")
        out.append(head)
        out.append(_SLOTS[slot](rng))
    out.append(rest)
    return "".join(out)


def generate_prompts(options: PromptOptions | None = None) -> list[tuple[str, str]]:
    """Generate distinct in-domain sentences.

    Args:
        options: how many, the seed, which domains.

    Returns:
        ``(domain, sentence)`` pairs, sentences normalized and pairwise distinct, in generation
        order (deterministic for the seed).

    Raises:
        ValueError: an unknown domain, or the templates cannot yield that many distinct
            sentences (after 50 tries per sentence asked for).
    """
    options = options or PromptOptions()
    unknown = [d for d in options.domains if d not in DOMAINS]
    if unknown:
        raise ValueError(f"unknown prompt domains {unknown}; choose from {sorted(DOMAINS)}")
    rng = random.Random(options.seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    budget = 50 * max(options.num_sentences, 1)
    domains = list(options.domains)
    while len(out) < options.num_sentences and budget > 0:
        budget -= 1
        domain = domains[len(out) % len(domains)] if rng.random() < 0.5 else rng.choice(domains)
        raw = _fill(rng.choice(DOMAINS[domain]), rng)
        sentence = normalize_text(raw, options.normalize)
        if not sentence or sentence in seen or len(sentence.split()) > options.max_words:
            continue
        seen.add(sentence)
        out.append((domain, sentence))
    if len(out) < options.num_sentences:
        raise ValueError(
            f"only {len(out)} distinct sentences could be generated from domains {domains}; "
            f"asked for {options.num_sentences}"
        )
    return out


def vocabulary(sentences: list[str]) -> dict[str, int]:
    """Count the words of ``sentences``.

    Args:
        sentences: normalized sentences.

    Returns:
        Word -> number of occurrences, most frequent first.
    """
    counts: dict[str, int] = {}
    for s in sentences:
        for w in s.split():
            counts[w] = counts.get(w, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class TextListResult:
    """What :func:`load_text_list` made of a file: the usable sentences and every rejected line."""

    sentences: list[str]  # normalized, distinct, in file order
    rejected: list[dict]  # {"line": n, "text": raw, "reason": why}; duplicates and empties included


def load_text_list(path: str | os.PathLike, normalize: NormalizeOptions = DEFAULT_OPTIONS) -> TextListResult:
    """Read a user's sentences, one per line (UTF-8), and normalize them.

    Lines that are blank, normalize to nothing, contain unknown characters, or repeat an earlier
    sentence are not used, and each is reported with its line number and reason.

    Args:
        path: a UTF-8 text file.
        normalize: the labelling convention.

    Returns:
        The usable sentences and the rejected lines.

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not UTF-8.
    """
    sentences: list[str] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            sentence = normalize_text(raw, normalize)
        except TextNormalizationError as exc:
            rejected.append({"line": lineno, "text": raw, "reason": str(exc)})
            continue
        if not sentence:
            rejected.append({"line": lineno, "text": raw, "reason": "empty after normalization"})
        elif sentence in seen:
            rejected.append({"line": lineno, "text": raw, "reason": "duplicate of an earlier line"})
        else:
            seen.add(sentence)
            sentences.append(sentence)
    return TextListResult(sentences, rejected)


@dataclass(frozen=True)
class SentenceSplit:
    """Disjoint train/dev/test sentence lists."""

    train: list[str]  # sentences for training
    dev: list[str]  # held-out sentences for model selection
    test: list[str]  # held-out sentences for the final score; none occurs in train or dev


def split_sentences(
    sentences: list[str], dev_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> SentenceSplit:
    """Split distinct sentences into train/dev/test, each sentence in exactly one part.

    Duplicates are collapsed first (keeping the first), so a sentence cannot straddle parts.

    Args:
        sentences: sentences (normalized).
        dev_fraction: share for dev (at least one sentence when there are three or more).
        test_fraction: share for test (at least one sentence when there are three or more).
        seed: shuffle seed.

    Returns:
        The split.

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ValueError("dev_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    unique = list(dict.fromkeys(sentences))
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    n = len(unique)
    n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
    n_dev = max(1, round(n * dev_fraction)) if n >= 3 and dev_fraction > 0 else 0
    test = [unique[i] for i in order[:n_test]]
    dev = [unique[i] for i in order[n_test : n_test + n_dev]]
    train = [unique[i] for i in order[n_test + n_dev :]]
    return SentenceSplit(train=train, dev=dev, test=test)
