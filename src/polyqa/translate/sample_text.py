"""A few KB of English and multilingual text, shipped so the tiny model can be built offline.

The text only has to give sentencepiece enough characters and frequent words to
learn a small vocabulary; it is not a translation corpus.
"""

from __future__ import annotations

ENGLISH = """\
The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France.
Dr. Smith moved to the U.S. in 1998 and worked at the university for 12.5 years.
"What is the capital of France?" she asked. "Paris," he answered without hesitation.
The river flows through the city and reaches the sea after about 300 kilometres.
Scientists discovered that the temperature of the lake rose by 2.3 degrees in a decade.
In 1066, William the Conqueror crossed the Channel and defeated King Harold at Hastings.
The museum opens at 9 a.m. and closes at 5 p.m. on weekdays, except for public holidays.
Photosynthesis converts light energy into chemical energy stored in glucose.
The committee approved the new budget, which includes funding for schools and hospitals.
Many languages are spoken in India, including Hindi, Bengali, Tamil and Telugu.
The first computer programs were written for machines that filled entire rooms.
Mount Everest, the highest mountain on Earth, rises 8,849 metres above sea level.
Questions and answers about history, science, sport and culture fill this small corpus.
Who wrote the novel? When was the bridge built? Where does the river begin? Why did the empire fall?
The answer can be found in the second sentence of the paragraph.
Students read the passage carefully before they answered the questions.
"""

GERMAN = """\
Die Normannen waren das Volk, das im 10. und 11. Jahrhundert der Normandie ihren Namen gab.
Der Fluss fließt durch die Stadt und erreicht nach etwa 300 Kilometern das Meer.
Wissenschaftler entdeckten, dass die Temperatur des Sees in einem Jahrzehnt um 2,3 Grad stieg.
Das Museum öffnet um 9 Uhr und schließt um 17 Uhr. Was ist die Hauptstadt von Frankreich?
Die Schüler lasen den Text sorgfältig, bevor sie die Fragen beantworteten.
"""

FRENCH = """\
Les Normands étaient le peuple qui, aux Xe et XIe siècles, donna son nom à la Normandie.
Le fleuve traverse la ville et atteint la mer après environ 300 kilomètres.
Quelle est la capitale de la France ? « Paris », répondit-il sans hésiter.
Les élèves ont lu le passage attentivement avant de répondre aux questions.
La photosynthèse convertit l'énergie lumineuse en énergie chimique.
"""

SPANISH = """\
Los normandos fueron el pueblo que en los siglos X y XI dio su nombre a Normandía.
El río atraviesa la ciudad y llega al mar después de unos 300 kilómetros.
¿Cuál es la capital de Francia? «París», respondió él sin dudar.
Los estudiantes leyeron el pasaje con atención antes de responder a las preguntas.
"""

PORTUGUESE_ITALIAN_TURKISH_VIETNAMESE = """\
Os normandos foram o povo que deu o nome à Normandia. O rio atravessa a cidade.
I Normanni furono il popolo che diede il nome alla Normandia. Il fiume attraversa la città.
Normanlar, 10. ve 11. yüzyıllarda Normandiya'ya adını veren halktır. Nehir şehirden geçer.
Người Norman là dân tộc đã đặt tên cho vùng Normandie. Con sông chảy qua thành phố.
"""

GREEK_RUSSIAN = """\
Οι Νορμανδοί ήταν ο λαός που έδωσε το όνομά του στη Νορμανδία. Ο ποταμός διασχίζει την πόλη.
Норманны — народ, который дал своё имя Нормандии. Река протекает через город и впадает в море.
Какая столица Франции? Студенты внимательно прочитали текст, прежде чем ответить на вопросы.
"""

ARABIC_HINDI_THAI = """\
النورمان هم الشعب الذي أعطى اسمه لمنطقة نورماندي في فرنسا. يمر النهر عبر المدينة.
नॉर्मन वे लोग थे जिन्होंने नॉरमैंडी को अपना नाम दिया। नदी शहर से होकर बहती है।
ชาวนอร์มันเป็นผู้คนที่ตั้งชื่อให้แคว้นนอร์มังดี แม่น้ำไหลผ่านเมือง
"""

CHINESE_JAPANESE_KOREAN = """\
诺曼人是在十世纪和十一世纪把名字给了诺曼底的民族。这条河流经城市，最后流入大海。
法国的首都是哪里？学生们在回答问题之前仔细阅读了文章。
ノルマン人は十世紀と十一世紀にノルマンディーに名前を与えた人々である。川は町を流れている。
노르만족은 노르망디에 이름을 준 민족이다. 강은 도시를 가로질러 흐른다.
"""

SAMPLE_TEXT = "\n".join(
    [
        ENGLISH,
        GERMAN,
        FRENCH,
        SPANISH,
        PORTUGUESE_ITALIAN_TURKISH_VIETNAMESE,
        GREEK_RUSSIAN,
        ARABIC_HINDI_THAI,
        CHINESE_JAPANESE_KOREAN,
    ]
)


def sample_lines() -> list[str]:
    """Non-empty lines of the sample text."""
    return [line for line in SAMPLE_TEXT.splitlines() if line.strip()]
