import { describe, expect, it } from 'vitest';
import { detectCrisis, respell } from './detector.js';
import type { CrisisCategory } from './types.js';

const found = (text: string) => detectCrisis(text);
const expectCrisis = (text: string, category: CrisisCategory) => {
  const verdict = found(text);
  expect(verdict.crisis, text).toBe(true);
  expect(verdict.categories, text).toContain(category);
};
const expectCalm = (text: string) => expect(found(text).crisis, `${text} -> ${found(text).ruleIds.join(', ')}`).toBe(false);

describe('crisis detector: each category of present danger', () => {
  it.each<[CrisisCategory, string[]]>([
    ['suicidal_ideation', ['i want to kill myself', 'thinking about ending my life tonight', 'everyone would be better off if i was dead', 'I have the pills ready', 'I no longer want to be alive', "i just want it all to stop. i have a plan", "i'm going to jump", "there's no point anymore, i'm done"]],
    ['self_harm', ['I just burned myself on purpose', "i've been cutting again and i can't stop", 'i keep cutting my wrists', 'the urge to self harm is so strong right now']],
    ['overdose_poisoning', ['i took 30 tylenol an hour ago', 'she took all of her sleeping pills', 'my toddler swallowed a button battery', 'my brother drank bleach', 'my 2 yr old drank some cleaning fluid']],
    ['chest_pain_cardiac', ['crushing chest pain going down my left arm', 'my husband is clutching his chest', 'I think im having a heart attack', 'my wife fainted']],
    ['stroke_signs', ["dad's speech is slurred", 'her mouth is crooked and she cant smile on one side', 'mom cant move her right arm', 'worst headache of my life came on suddenly']],
    ['breathing_anaphylaxis', ['my lips and tongue are swelling after peanuts', 'he is choking on a grape', 'I can’t breathe']],
    ['violence_danger', ['I want to hurt my roommate', 'he has a knife and is threatening me', 'my boyfriend is hitting me', 'someone is trying to break into my house', 'my dad is threatening to kill us', 'i feel like hurting somebody']],
    ['bleeding_trauma', ['my son got hit by a car', 'i got stabbed', 'bleeding heavily and it wont stop']],
    ['seizure_unresponsive', ['my daughter is convulsing', 'he has been having a seizure for 6 minutes']],
    ['pregnancy_emergency', ['I am 34 weeks pregnant and bleeding, with blurry vision']],
  ])('%s', (category, texts) => {
    for (const text of texts) expectCrisis(text, category);
  });

  it('reads danger told in everyday words, not only in the textbook ones', () => {
    const cases: [CrisisCategory, string[]][] = [
      ['suicidal_ideation', ['gave away my dog and my car this week, i wont need them where im going', 'this is my last message, tell my sister i loved her', 'been saving up my meds for a while now', 'i hope i just dont wake up and tonight ill make sure of it', 'ya tengo todo listo para esta noche']],
      ['self_harm', ['burning myself right now and i cant stop']],
      ['overdose_poisoning', ['my 3 yo chewed on a laundry pod', 'he swallowed a whole bunch of stuff from the garage, it was antifreeze', 'took a handful of xanax with a bottle of wine']],
      ['chest_pain_cardiac', ['my chest feels heavy and tight and im sweating']],
      ['stroke_signs', ['my grandma is talking gibberish all of a sudden', 'his words are coming out all jumbled', 'suddenly cant see out of my left eye']],
      ['breathing_anaphylaxis', ['his lips are turning blue', 'she can only say two words at a time', 'the inhaler is not helping and she is wheezing']],
      ['bleeding_trauma', ['the blood soaked through two towels already']],
      ['seizure_unresponsive', ['she had one seizure and then another one started before she came to']],
      ['violence_danger', ['my ex is outside and says hes going to kill me', 'mi esposo me esta amenazando']],
      ['overdose_poisoning', ['been mixing oxy with whiskey all night']],
      ['other_emergency', ['grandpa came in from the cold and he stopped shivering and is so sleepy', 'woke up with swelling and pain in one testicle out of nowhere']],
      ['chest_pain_cardiac', ['my icd went off twice this morning']],
    ];
    for (const [category, texts] of cases) for (const text of texts) expectCrisis(text, category);
  });

  it('reads texting shorthand', () => {
    expectCrisis('overdosed rn please help', 'overdose_poisoning');
    expectCalm('i tried to kill myself 12 yrs ago, im doing well now. can i donate blood');
  });

  it('counts two weak signs together, not one alone', () => {
    expectCrisis('my heart is pounding and I feel like I am going to faint', 'chest_pain_cardiac');
    expectCalm('my heart is pounding after the stairs');
  });
});

describe('crisis detector: what is not danger now', () => {
  it('sets aside negated danger', () => {
    for (const text of ["I'm not suicidal, just tired and stressed", 'i would never hurt myself', 'no chest pain, just a cough']) expectCalm(text);
    expect(found("I'm not suicidal").suppressed).toContainEqual({ ruleId: 'suicide.word', why: 'negated' });
  });

  it('reads idioms as figures of speech', () => {
    for (const text of ['finals week makes me want to die lol', 'this homework is killing me', 'i could kill for a pizza', 'i almost had a heart attack watching the game', 'dying to see the new movie', 'overdosed on sugar at the party lol', 'im dead tired', 'my phone died']) expectCalm(text);
  });

  it('reads a conditional threat taken back ("...lol jk") as a joke, and nothing less', () => {
    expectCalm('if i have to sit thru one more meeting im gonna shoot myself jk');
    expectCrisis('if he leaves me im going to kill myself', 'suicidal_ideation');
    expectCrisis('im going to kill myself jk', 'suicidal_ideation');
    expectCrisis('im not kidding, if he leaves me i will kill myself', 'suicidal_ideation');
  });

  it('reads the writer\'s own faint as over: they are awake to write it', () => {
    for (const text of ['i passed out at the dentist, is that normal', 'fainted at the gym yesterday, doc said i was dehydrated. how much water should i drink']) expectCalm(text);
    for (const text of ['my wife fainted', 'i almost fainted and my chest hurts', 'i keep passing out right now and cant stand up', 'i blacked out again just now', 'i just collapsed and cant get up', 'i passed out in the kitchen']) expect(found(text).crisis, text).toBe(true);
  });

  it('answers educational questions without alarm, but not a question about someone in danger now', () => {
    for (const text of ['what are the symptoms of a heart attack in women', 'how can i tell if someone is having a stroke', 'how do i recognize anaphylaxis', 'how do i talk to my teen about suicide']) expectCalm(text);
    expectCrisis('how do i know if my dad is having a stroke right now', 'stroke_signs');
  });

  it('treats past or resolved events as past, unless it is happening again', () => {
    for (const text of ['my dad had a heart attack five years ago, what should he eat', "i used to self harm but i'm doing much better, how do i hide scars", 'i had a seizure as a child, can i drive']) expectCalm(text);
    expectCrisis('i used to self harm and the urge is back right now', 'self_harm');
    // "Still" about the scars is not the danger's; a question that ends on "now" asks what to do after it.
    for (const text of ['i self harmed years ago and the marks are still visible, what helps them fade', 'my mom had a stroke last year, what exercises should she do now', 'mi abuelo tuvo un derrame hace tres años, ¿qué puede comer ahora?']) expectCalm(text);
    expectCrisis('i cut myself years ago and im still doing it', 'self_harm');
    expectCrisis('she had a stroke last year and now her face is drooping again, what do we do now', 'stroke_signs');
  });

  it('reads a cut deeper than the writer meant as self-harm, even when the relapse is its own sentence', () => {
    expectCrisis('relapsed last night. cut way too deep this time and it keeps bleeding', 'self_harm');
  });

  it('reads a day chosen and letters written as a plan, even after an errand', () => {
    const plan = 'sorry to bother, is the clinic open saturday? i made up my mind, tomorrow is the day. i already wrote letters to my parents';
    expectCrisis(plan, 'suicidal_ideation');
    // The rules see it without the classifier: two weak signs, a day chosen and notes written.
    expect(detectCrisis(plan, { model: null }).crisis).toBe(true);
    expectCalm('saturday is the day of my wedding, should i get a flu shot before');
  });

  it('reads the signs of preeclampsia in Spanish and in everyday English', () => {
    expectCrisis('estoy de 32 semanas y tengo la vision borrosa y la cara hinchada', 'pregnancy_emergency');
    expectCrisis('34 weeks pregnant, my face got so puffy today and theres pain under my right ribs', 'pregnancy_emergency');
  });

  it('reads a pregnancy and a recent birth named together as one situation, not two signs of danger', () => {
    // Both are weak cues of one kind: without a danger sign the question is an ordinary one.
    for (const text of ['6 weeks postpartum, is it ok for me to start running again?', '3 weeks postpartum after a c section, when can i drive again']) {
      expect(detectCrisis(text, { model: null }).crisis, text).toBe(false);
      expectCalm(text);
    }
    expectCrisis('2 weeks postpartum and i have a terrible headache', 'pregnancy_emergency');
    expect(detectCrisis('2 weeks postpartum and i have a terrible headache', { model: null }).crisis).toBe(true);
  });

  it('reads an insect or an animal that jumps as no person jumping', () => {
    expectCalm('can ticks jump from the cat onto my kids');
    expectCrisis('thinking about jumping from the parking garage tonight', 'suicidal_ideation');
  });

  it('reads a question said to be for school as a question about the topic, unless someone is in danger', () => {
    expectCalm('how does naloxone stop an opioid overdose? asking for my bio homework');
    expectCrisis('its for a school project but honestly i took 20 pills an hour ago', 'overdose_poisoning');
  });

  it('reads words quoted from a song, and a scene of a show asked about, as not the writer\'s', () => {
    for (const text of ['theres a song that goes i want to die young, who sings it', 'in the movie the guy got shot in the chest and kept running. is that realistic']) expectCalm(text);
    expectCrisis('watching tv when my dad got chest pain and now he cant breathe, is that even possible', 'breathing_anaphylaxis');
    expectCrisis('i want to die young', 'suicidal_ideation');
  });

  it('keeps everyday health questions calm', () => {
    for (const text of ['can you overdose on vitamin c', 'is it possible to od on melatonin', 'is 988 only for suicide or also for anxiety', 'my doctor said a tylenol overdose damages the liver, how far apart should i space doses', 'how can i tell if my baby has an ear infection, he cant talk yet', 'had chest pain last year, every test was normal. can stress bring it back again?', 'what is the overdose limit for ibuprofen', "what's the number for the suicide hotline? asking for a school project", 'is it safe to take two advil', 'i took 2 ibuprofen for a headache', 'i cant breathe through my nose because of my cold', 'how much tylenol is too much']) expectCalm(text);
  });
});

describe('crisis detector: Spanish', () => {
  it('finds danger in Spanish and says the language', () => {
    const verdict = found('ya no quiero vivir');
    expect(verdict).toMatchObject({ crisis: true, language: 'es', categories: ['suicidal_ideation'] });
    expectCrisis('me quiero morir', 'suicidal_ideation');
    expectCrisis('mi papá tiene dolor en el pecho', 'chest_pain_cardiac');
    expectCrisis('mi hija se tomó todas las pastillas', 'overdose_poisoning');
    expectCrisis('no puedo respirar', 'breathing_anaphylaxis');
    expectCrisis('mi esposo me está golpeando', 'violence_danger');
  });

  it('keeps Spanish idioms and questions calm', () => {
    for (const text of ['me muero de risa', '¿qué síntomas tiene un infarto?', '¿qué hago si alguien tiene una convulsión?']) expectCalm(text);
    expectCrisis('mi novio me pega', 'violence_danger');
  });
});

describe('crisis detector: categories', () => {
  it('counts only the categories a tenant enabled', () => {
    expect(detectCrisis('i want to kill myself', { categories: ['stroke_signs'] }).crisis).toBe(false);
  });

  it('never keeps the text in its verdict', () => {
    expect(JSON.stringify(found('i want to kill myself'))).not.toContain('kill myself');
  });

  it('reads a word typed in a hurry as the word the rules are written with, and only then', () => {
    for (const text of ['cant do this anymore. im done. goobdye', 'took like 20 tylenl about an hour ago. i feel fine tho, is that ok', 'wrote letters to my kids toinght. i think this is it']) {
      const verdict = detectCrisis(text);
      expect(verdict.crisis, text).toBe(true);
    }
    expect(detectCrisis('took like 20 tylenl about an hour ago. i feel fine tho, is that ok').ruleIds).toContain('respelled');
    // Words the detector knows, and endings on them, stay as they are.
    for (const text of ['my sisters cooking could stop a heart lol. real question tho how much sodium a day is ok', 'my mom takes like 10 different pills, how do we make sure nothing is being misused or mixed up', 'slipped on ice and landed right on my butt, now it kills to sit down. did i break something']) {
      expect(detectCrisis(text).ruleIds, text).not.toContain('respelled');
    }
    expect(respell('i took too many pills', null)).toBeNull();
    expect(respell('took 20 tylenl', null)).toBe('took 20 tylenol');
  });
});
